//! The source pass that adapts dbt templates to minijinja before they are compiled.
//!
//! It walks minijinja's own token stream (so strings, comments, `{% raw %}` blocks and
//! whitespace control are understood exactly as the compiler will understand them) and edits
//! only the bytes of a few tokens, keeping every line and column where it was, so that error
//! locations still point into the user's file:
//!
//! - a list literal `[a, b]` becomes `__weir_list(a, b)` and a dict literal `{'k': v}` becomes
//!   `__weir_dict('k', v)`, constructors of the mutable [`List`](super::value::List) and
//!   [`Dict`](super::value::Dict); subscripts and slices (`x[0]`, `f()[1:]`, `{...}['k']`)
//!   are left alone;
//! - in macro files, `{% macro name %}` is renamed to `{% macro __weir_macro__name %}` so that a
//!   bare call `name()` inside the same file resolves through weir's macro table (where `return()`
//!   is caught) instead of minijinja's local macro; dbt's `{% test %}` and `{% materialization %}`
//!   blocks become macros named as dbt names them (`test_<name>`,
//!   `materialization_<name>_<adapter>`).

use minijinja::machinery::{Token, tokenize};
use minijinja::syntax::SyntaxConfig;

/// The prefix given to macro names inside compiled macro files.
pub const MACRO_PREFIX: &str = "__weir_macro__";
/// The global that builds a mutable list.
pub const LIST_CTOR: &str = "__weir_list";
/// The global that builds a mutable dict from key, value, key, value, ...
pub const DICT_CTOR: &str = "__weir_dict";

/// A macro declared in a macro file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroDecl {
    /// The name dbt calls it by (`star`, `test_equality`, `materialization_table_default`).
    pub name: String,
    /// 1-based line of the `{% macro %}` tag.
    pub line: usize,
}

/// A template source after the pass.
#[derive(Debug, Clone)]
pub struct Rewritten {
    pub source: String,
    pub macros: Vec<MacroDecl>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    List,
    Subscript,
    Paren,
    Dict,
}

/// Words the lexer reports as identifiers that cannot end an operand: a `[` after them starts
/// a list literal (`x in [1, 2]`, `not []`, `a if c else []`).
const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "is", "if", "else", "elif", "for", "set", "do", "with", "return",
];

fn ends_operand(tok: &Token<'_>) -> bool {
    match tok {
        Token::Ident(name) => !KEYWORDS.contains(name),
        Token::Str(_)
        | Token::String(_)
        | Token::Int(_)
        | Token::Int128(_)
        | Token::Float(_)
        | Token::ParenClose
        | Token::BracketClose
        | Token::BraceClose => true,
        _ => false,
    }
}

/// Rewrites literals (always) and macro declarations (when `macro_file`).
///
/// A source the lexer rejects is returned unchanged: the compiler then reports the syntax
/// error with its own location.
pub fn rewrite(source: &str, macro_file: bool) -> Rewritten {
    let mut tokens = Vec::new();
    for item in tokenize(source, false, SyntaxConfig::default()) {
        match item {
            Ok(tok) => tokens.push(tok),
            Err(_) => {
                return Rewritten {
                    source: source.to_string(),
                    macros: Vec::new(),
                };
            }
        }
    }

    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut macros = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut prev_ends_operand = false;
    let span_of = |i: usize| {
        let s = tokens[i].1;
        (s.start_offset as usize, s.end_offset as usize)
    };

    // The macro being scanned: where its signature closes, whether it has parameters, and
    // whether its body reads Jinja's implicit `kwargs` / `varargs`.
    let mut open_macro: Option<(usize, bool, bool, bool)> = None;
    let mut i = 0;
    while i < tokens.len() {
        let (start, end) = span_of(i);
        match &tokens[i].0 {
            Token::TemplateData(_)
            | Token::VariableStart
            | Token::VariableEnd
            | Token::BlockEnd => {
                stack.clear();
                prev_ends_operand = false;
            }
            Token::BlockStart => {
                stack.clear();
                prev_ends_operand = false;
                if macro_file {
                    match tokens.get(i + 1).map(|t| &t.0) {
                        Some(Token::Ident("macro" | "test")) => {
                            open_macro = signature_close(&tokens, i + 3)
                                .map(|(offset, empty)| (offset, empty, false, false));
                        }
                        Some(Token::Ident("endmacro" | "endtest")) => {
                            if let Some((offset, empty, kwargs, varargs)) = open_macro.take() {
                                let mut extra: Vec<&str> = Vec::new();
                                if varargs {
                                    extra.push("varargs=none");
                                }
                                if kwargs {
                                    extra.push("kwargs=none");
                                }
                                if !extra.is_empty() {
                                    let sep = if empty { "" } else { ", " };
                                    edits.push((
                                        offset,
                                        offset,
                                        format!("{sep}{}", extra.join(", ")),
                                    ));
                                }
                            }
                        }
                        _ => {}
                    }
                    if let Some(skip) = rewrite_block_tag(&tokens, i + 1, &mut edits, &mut macros) {
                        i += skip;
                    }
                }
            }
            Token::Ident(name @ ("kwargs" | "varargs")) => {
                if let Some(m) = open_macro.as_mut() {
                    if *name == "kwargs" {
                        m.2 = true;
                    } else {
                        m.3 = true;
                    }
                }
                prev_ends_operand = true;
            }
            Token::BracketOpen => {
                if prev_ends_operand {
                    stack.push(Open::Subscript);
                } else {
                    stack.push(Open::List);
                    edits.push((start, end, format!("{LIST_CTOR}(")));
                }
                prev_ends_operand = false;
            }
            Token::BracketClose => {
                if stack.pop() == Some(Open::List) {
                    edits.push((start, end, ")".to_string()));
                }
                prev_ends_operand = true;
            }
            Token::BraceOpen => {
                stack.push(Open::Dict);
                edits.push((start, end, format!("{DICT_CTOR}(")));
                prev_ends_operand = false;
            }
            Token::BraceClose => {
                if stack.pop() == Some(Open::Dict) {
                    edits.push((start, end, ")".to_string()));
                }
                prev_ends_operand = true;
            }
            Token::ParenOpen => {
                stack.push(Open::Paren);
                prev_ends_operand = false;
            }
            Token::ParenClose => {
                stack.pop();
                prev_ends_operand = true;
            }
            Token::Colon => {
                if stack.last() == Some(&Open::Dict) {
                    edits.push((start, end, ",".to_string()));
                }
                prev_ends_operand = false;
            }
            Token::Str(_) | Token::String(_) => {
                if let Some(text) = join_continued_lines(&source[start..end]) {
                    edits.push((start, end, text));
                }
                prev_ends_operand = true;
            }
            tok => prev_ends_operand = ends_operand(tok),
        }
        i += 1;
    }

    // Signature insertions are pushed when the macro ends, after the body's edits.
    edits.sort_by_key(|(start, _, _)| *start);
    let mut out = String::with_capacity(source.len() + edits.len() * 8);
    let mut pos = 0;
    for (start, end, text) in edits {
        out.push_str(&source[pos..start]);
        out.push_str(&text);
        pos = end;
    }
    out.push_str(&source[pos..]);
    Rewritten {
        source: out,
        macros,
    }
}

/// Python reads a backslash before a newline inside a string literal as a line continuation
/// (dbt_utils relies on it); minijinja keeps both. The joined literal is followed by the
/// removed newlines, outside the quotes, so that later lines keep their numbers.
fn join_continued_lines(literal: &str) -> Option<String> {
    if !literal.contains("\\\n") && !literal.contains("\\\r\n") {
        return None;
    }
    let mut out = String::with_capacity(literal.len());
    let mut newlines = 0;
    let mut chars = literal.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('\n') => {
                chars.next();
                newlines += 1;
            }
            Some('\r') => {
                chars.next();
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                newlines += 1;
            }
            Some(&next) => {
                out.push(c);
                out.push(next);
                chars.next();
            }
            None => out.push(c),
        }
    }
    out.push_str(&"\n".repeat(newlines));
    Some(out)
}

/// The offset of the `)` closing a macro signature whose `(` is token `at`, and whether the
/// parameter list is empty.
fn signature_close(
    tokens: &[(Token<'_>, minijinja::machinery::Span)],
    at: usize,
) -> Option<(usize, bool)> {
    if !matches!(tokens.get(at)?.0, Token::ParenOpen) {
        return None;
    }
    let mut depth = 0usize;
    for (j, (tok, span)) in tokens.iter().enumerate().skip(at) {
        match tok {
            Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => depth += 1,
            Token::ParenClose | Token::BracketClose | Token::BraceClose => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some((span.start_offset as usize, j == at + 1));
                }
            }
            Token::BlockEnd => return None,
            _ => {}
        }
    }
    None
}

/// Handles the tag after a `{%` in a macro file; returns how many tokens it consumed.
fn rewrite_block_tag(
    tokens: &[(Token<'_>, minijinja::machinery::Span)],
    at: usize,
    edits: &mut Vec<(usize, usize, String)>,
    macros: &mut Vec<MacroDecl>,
) -> Option<usize> {
    let span = |i: usize| {
        let s = tokens[i].1;
        (s.start_offset as usize, s.end_offset as usize)
    };
    let Token::Ident(tag) = tokens.get(at)?.0 else {
        return None;
    };
    match tag {
        "macro" | "test" => {
            let Token::Ident(name) = tokens.get(at + 1)?.0 else {
                return None;
            };
            let dbt_name = if tag == "test" {
                format!("test_{name}")
            } else {
                name.to_string()
            };
            let (ts, te) = span(at);
            if tag == "test" {
                edits.push((ts, te, "macro".to_string()));
            }
            let (ns, ne) = span(at + 1);
            edits.push((ns, ne, format!("{MACRO_PREFIX}{dbt_name}")));
            macros.push(MacroDecl {
                name: dbt_name,
                line: tokens[at].1.start_line as usize,
            });
            Some(2)
        }
        "endtest" | "endmaterialization" => {
            let (s, e) = span(at);
            edits.push((s, e, "endmacro".to_string()));
            Some(1)
        }
        "materialization" => {
            // `{% materialization name, adapter='x' %}` or `{% materialization name, default %}`
            let mut j = at + 1;
            let mut words = Vec::new();
            while let Some((tok, _)) = tokens.get(j) {
                match tok {
                    Token::BlockEnd => break,
                    Token::Ident(w) if *w != "adapter" => words.push(w.to_string()),
                    Token::Str(w) => words.push(w.to_string()),
                    _ => {}
                }
                j += 1;
            }
            let name = words.first()?.clone();
            let adapter = words
                .get(1)
                .cloned()
                .unwrap_or_else(|| "default".to_string());
            let dbt_name = format!("materialization_{name}_{adapter}");
            let (s, _) = span(at);
            let (_, e) = span(j - 1);
            edits.push((s, e, format!("macro {MACRO_PREFIX}{dbt_name}()")));
            macros.push(MacroDecl {
                name: dbt_name,
                line: tokens[at].1.start_line as usize,
            });
            Some(j - at)
        }
        _ => None,
    }
}
