//! Fernet encryption of secrets at rest, with Airflow's key format (32 url-safe base64 bytes).

use crate::{Result, StoreError};
use std::sync::Arc;

/// Encrypts and decrypts stored secrets. Cheap to clone; never prints its key.
#[derive(Clone)]
pub struct Cipher {
    fernet: Arc<fernet::Fernet>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(***)")
    }
}

impl Cipher {
    /// A cipher from a key as `weir init` and Airflow write them.
    pub fn new(key: &str) -> Result<Cipher> {
        let fernet = fernet::Fernet::new(key.trim()).ok_or_else(|| {
            StoreError::Secret(
                "the fernet key is not 32 url-safe base64-encoded bytes\nhint: generate one with weir init, or python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'".into(),
            )
        })?;
        Ok(Cipher {
            fernet: Arc::new(fernet),
        })
    }

    /// A new random key.
    pub fn generate_key() -> String {
        fernet::Fernet::generate_key()
    }

    pub fn encrypt(&self, plain: &str) -> String {
        self.fernet.encrypt(plain.as_bytes())
    }

    pub fn decrypt(&self, token: &str) -> Result<String> {
        let bytes = self.fernet.decrypt(token).map_err(|_| {
            StoreError::Secret(
                "cannot decrypt a stored secret: the fernet key differs from the one it was written with\nhint: set [core] fernet_key (or WEIR__CORE__FERNET_KEY) to the original key".into(),
            )
        })?;
        String::from_utf8(bytes)
            .map_err(|e| StoreError::Secret(format!("a decrypted secret is not UTF-8: {e}")))
    }
}
