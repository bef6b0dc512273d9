"""Drives the web UI of a running `weir standalone` in headless Chromium (Selenium), as a user
would: log in, see the DAG list, trigger example_daily with a conf (a bad one first), watch the
grid turn green without a reload, open a task's log, clear the task and watch it run again,
pause the DAG, open the graph, log out. Waits on the page's DOM (WebDriverWait), never sleeps.

Usage: browser_check.py WEIR_BINARY SCREENSHOT_DIR
Creates a project with `weir init` in a temp folder, starts `weir standalone` on a free port,
saves a screenshot after each step, and exits non-zero with the failing step on the first error.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SHOTS = []


WEIR = PROJ = None


def step(name):
    print(f"- {name}", flush=True)


def main():
    weir = os.path.abspath(sys.argv[1])
    shots = sys.argv[2]
    os.makedirs(shots, exist_ok=True)
    for old in os.listdir(shots):
        if old.endswith(".png"):
            os.remove(os.path.join(shots, old))
    tmp = tempfile.mkdtemp(prefix="weir-ui-check-")
    proj = os.path.join(tmp, "proj")
    global WEIR, PROJ
    WEIR, PROJ = weir, proj
    out = subprocess.run([weir, "init", proj], check=True, capture_output=True, text=True).stdout
    password = re.search(r"login: admin / (\S+)", out).group(1)
    add_dbt_project(proj)
    add_waiting_dags(proj)
    log = open(os.path.join(tmp, "standalone.log"), "w+")
    env = dict(os.environ, WEIR__WEBSERVER__PORT="0", WEIR__WEBSERVER__HOST="127.0.0.1", NO_COLOR="1")
    proc = subprocess.Popen([weir, "--project", proj, "standalone"], stdout=subprocess.DEVNULL, stderr=log,
                            stdin=subprocess.DEVNULL, env=env)
    driver = None
    try:
        base = wait_for_url(log, proc)
        driver = browser()
        run_steps(driver, base, password, shots)
        print(f"browser check: every step passed; screenshots in {shots}")
    except Exception:
        if driver is not None:
            driver.save_screenshot(os.path.join(shots, "failure.png"))
            sys.stderr.write(f"---- page at failure: {driver.current_url} ----\n")
        log.seek(0)
        sys.stderr.write("---- weir standalone log ----\n" + log.read()[-4000:])
        raise
    finally:
        if driver is not None:
            driver.quit()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def add_dbt_project(proj):
    """Puts the public jaffle_shop_duckdb dbt project in the project's models/ (where `models`
    tasks and the UI's models pages look by default), from the test fixtures."""
    fixtures = os.environ.get("WEIR_FIXTURES", "")
    tarball = os.path.join(fixtures, "jaffle_shop_duckdb-9b13827.tar.gz")
    if not os.path.isfile(tarball):
        raise RuntimeError(f"no {tarball}: set WEIR_FIXTURES to the folder of the test fixtures")
    models = os.path.join(proj, "models")
    os.makedirs(models, exist_ok=True)
    subprocess.run(["tar", "xzf", tarball, "-C", models], check=True)


def add_waiting_dags(proj):
    """A report whose sensor waits (deferred) for a feed's task, and a DAG that triggers the feed
    and waits for its run."""
    dags = os.path.join(proj, "dags")
    with open(os.path.join(dags, "feed.yaml"), "w") as f:
        f.write("schedule: null\ntasks:\n  - {id: load, type: shell, command: echo loaded}\n")
    with open(os.path.join(dags, "report_waits.yaml"), "w") as f:
        f.write("schedule: null\ntasks:\n  - id: feed_loaded\n    type: wait_for\n    dag_id: feed\n"
                "    task_id: load\n    poke_interval: 30s\n"
                "  - {id: report, type: shell, command: echo report, depends_on: [feed_loaded]}\n")
    with open(os.path.join(dags, "kick_feed.yaml"), "w") as f:
        f.write("schedule: null\ntasks:\n  - id: kick\n    type: trigger_dag\n    dag_id: feed\n"
                "    logical_date: '{{ logical_date }}'\n    wait_for_completion: true\n    poke_interval: 30s\n")


def wait_for_url(log, proc):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        log.seek(0)
        m = re.search(r"web UI and REST API: (http://\S+)", log.read())
        if m:
            return m.group(1)
        if proc.poll() is not None:
            raise RuntimeError("weir standalone exited early")
        time.sleep(0.05)
    raise RuntimeError("weir standalone printed no URL in 60 s")


def browser():
    opts = Options()
    opts.binary_location = os.environ.get("WEIR_CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,950", "--force-prefers-reduced-motion"):
        opts.add_argument(arg)
    # The browser's own zone differs from UTC, so the time-zone switch has something to show.
    service = Service(executable_path=os.environ.get("WEIR_CHROMEDRIVER", "/usr/bin/chromedriver"),
                      env=dict(os.environ, TZ="Asia/Seoul"))
    return webdriver.Chrome(service=service, options=opts)


def shot(driver, shots, name):
    path = os.path.join(shots, f"{len(SHOTS) + 1:02d}-{name}.png")
    driver.save_screenshot(path)
    SHOTS.append(path)


def css(driver, selector):
    return driver.find_element(By.CSS_SELECTOR, selector)


def wait(driver, seconds, condition, what):
    # htmx swaps elements out while we look at them: a stale one means "look again".
    return WebDriverWait(driver, seconds, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition, message=what)


def mark_page(driver):
    """Tags the current document; a reload loses the tag."""
    driver.execute_script("window.__weirNoReload = true;")


def not_reloaded(driver):
    return driver.execute_script("return window.__weirNoReload === true;")


def run_steps(driver, base, password, shots):
    step("an unauthenticated visit goes to the login page")
    driver.get(base + "/dags/example_daily/grid")
    wait(driver, 10, lambda d: "/login" in d.current_url, "no redirect to /login")
    shot(driver, shots, "login")

    step("log in")
    css(driver, "#username").send_keys("admin")
    css(driver, "#password").send_keys(password)
    css(driver, "#login").click()
    wait(driver, 10, lambda d: d.current_url.endswith("/dags/example_daily/grid"),
         "login did not return to the page asked for")

    step("the DAG list")
    driver.get(base + "/")

    def listed(d):
        if d.find_elements(By.CSS_SELECTOR, 'tr[data-dag-id="example_daily"]'):
            return True
        d.refresh()  # the DAG processor may not have stored the DAG yet
        return False

    wait(driver, 60, listed, "example_daily is not listed")
    toggle = css(driver, 'tr[data-dag-id="example_daily"] .toggle')
    if toggle.get_attribute("data-paused") == "true":
        mark_page(driver)
        toggle.click()
        wait(driver, 10, lambda d: css(d, 'tr[data-dag-id="example_daily"] .toggle')
             .get_attribute("data-paused") == "false", "the toggle did not unpause")
        assert not_reloaded(driver), "the pause toggle reloaded the page"
    shot(driver, shots, "dag-list")

    step("the trigger form refuses bad JSON")
    css(driver, 'tr[data-dag-id="example_daily"] a.dag-link').click()
    wait(driver, 10, lambda d: d.current_url.endswith("/grid"), "no grid page")
    css(driver, "#trigger").click()
    conf = css(driver, "#conf")
    assert '"min_rows": 3' in conf.get_attribute("value"), conf.get_attribute("value")
    conf.clear()
    conf.send_keys('{"min_rows": 4,')
    css(driver, "#trigger-submit").click()
    error = wait(driver, 10, lambda d: d.find_elements(By.ID, "trigger-error"), "no error shown")[0]
    assert "not valid JSON" in error.text, error.text
    shot(driver, shots, "trigger-bad-json")

    step("trigger example_daily with a conf")
    conf = css(driver, "#conf")
    conf.clear()
    conf.send_keys('{"country": "KR", "min_rows": 4}')
    css(driver, "#trigger-submit").click()
    wait(driver, 10, lambda d: d.current_url.endswith("/grid"), "no grid after the trigger")
    shot(driver, shots, "grid-triggered")

    step("the grid turns green without a reload")
    mark_page(driver)

    def all_green(d):
        grid = d.find_elements(By.ID, "grid")
        if not grid or grid[0].get_attribute("data-live") != "false":
            return False
        states = [c.get_attribute("data-state") for c in d.find_elements(By.CSS_SELECTOR, "#grid a.cell")]
        return len(states) >= 4 and all(s == "success" for s in states)

    wait(driver, 180, all_green, "the grid did not turn all green")
    assert not_reloaded(driver), "the page was reloaded"
    shot(driver, shots, "grid-green")

    step("open a task's log")
    css(driver, '#grid tr[data-task-id="extract"] td:last-child a.cell').click()
    wait(driver, 10, lambda d: "/tasks/extract" in d.current_url, "no task page")
    log = css(driver, "#log")
    assert "wrote .weir/data/events_" in log.text, log.text
    shot(driver, shots, "task-log")

    step("clear the task and see it run again")
    css(driver, "#clear").click()
    wait(driver, 10, lambda d: d.find_elements(By.ID, "ti-live"), "no task page after clear")
    mark_page(driver)

    def ran_again(d):
        live = d.find_elements(By.ID, "ti-live")
        return live and live[0].get_attribute("data-state") == "success" and \
            len(d.find_elements(By.CSS_SELECTOR, "table.tries tbody tr")) >= 2

    wait(driver, 120, ran_again, "the cleared task did not run again")
    assert not_reloaded(driver), "the page was reloaded"
    assert "Log of try 2" in driver.page_source
    assert "events_" in css(driver, "#xcoms").text, "the new try's XCom is not shown"
    shot(driver, shots, "task-rerun")

    step("pause the DAG")
    driver.get(base + "/")
    mark_page(driver)
    css(driver, 'tr[data-dag-id="example_daily"] .toggle').click()
    wait(driver, 10, lambda d: css(d, 'tr[data-dag-id="example_daily"] .toggle')
         .get_attribute("data-paused") == "true", "the toggle did not pause")
    assert not_reloaded(driver)
    shot(driver, shots, "paused")

    step("open the graph")
    driver.get(base + "/dags/example_daily/graph")
    nodes = wait(driver, 10, lambda d: d.find_elements(By.CSS_SELECTOR, "#graph g.node"), "no graph")
    assert len(nodes) == 4, len(nodes)
    assert all(n.get_attribute("data-state") == "success" for n in nodes)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#graph .edges path")) == 3
    shot(driver, shots, "graph")

    step("the audit log names the user; times switch to the browser's zone; dark theme")
    driver.get(base + "/audit")
    events = {(r.find_elements(By.TAG_NAME, "td")[1].text, r.find_elements(By.TAG_NAME, "td")[2].text)
              for r in driver.find_elements(By.CSS_SELECTOR, "#audit tbody tr")}
    for event in ("trigger", "clear", "pause"):
        assert (event, "admin") in events, (event, events)
    first = css(driver, "#audit time")
    assert first.text.endswith(" UTC"), first.text
    css(driver, "#tz-toggle").click()
    wait(driver, 5, lambda d: css(d, "#audit time").text.endswith(" Asia/Seoul"), "times did not switch zone")
    assert css(driver, "#tz-toggle").text == "Local: Asia/Seoul"
    css(driver, "#theme-toggle").click()
    assert driver.execute_script("return document.documentElement.dataset.theme") == "dark"
    shot(driver, shots, "audit-dark-seoul")
    driver.refresh()  # both choices are remembered
    assert css(driver, "#audit time").text.endswith(" Asia/Seoul")
    assert driver.execute_script("return document.documentElement.dataset.theme") == "dark"

    step("the models page draws jaffle_shop's lineage; a model's page shows its docs")
    css(driver, 'header nav a[href="/models"]').click()
    wait(driver, 10, lambda d: d.current_url.endswith("/models"), "no models page")
    names = {g.get_attribute("data-name") for g in driver.find_elements(By.CSS_SELECTOR, "#graph .node")}
    for name in ("raw_customers", "stg_orders", "customers", "orders"):
        assert name in names, (name, names)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#graph .edges path")) >= 8
    shot(driver, shots, "models-lineage")
    css(driver, 'tr[data-node="customers"] a').click()
    wait(driver, 10, lambda d: "id=model.jaffle_shop.customers" in d.current_url, "no model page")
    assert css(driver, "#node-name").text.startswith("customers")
    assert "customer" in css(driver, "#node-description").text.lower()
    column = css(driver, 'tr[data-column="customer_id"]')
    assert "unique" in column.text and "not_null" in column.text, column.text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#graph .node.focus")) == 1
    assert "stg_customers" in [a.text for a in driver.find_elements(By.CSS_SELECTOR, "a.parent")]
    shot(driver, shots, "model-customers")

    step("a deferred sensor in the grid and on its run page; trigger_dag links parent and child runs")

    def trigger(dag):
        subprocess.run([WEIR, "--project", PROJ, "dags", "trigger", dag, "--logical-date", "2026-02-01"],
                       check=True, capture_output=True)

    trigger("report_waits")
    driver.get(base + "/dags/report_waits/grid")
    cell = '#grid tr[data-task-id="feed_loaded"] a.cell'

    def sensor_state(d):
        cells = d.find_elements(By.CSS_SELECTOR, cell)
        return cells[0].get_attribute("data-state") if cells else None

    # The sensor waits for feed.load, which has not run: deferred, holding no slot.
    wait(driver, 60, lambda d: sensor_state(d) == "deferred", "the sensor never deferred")
    shot(driver, shots, "grid-sensor-deferred")
    css(driver, '#grid th.run-col a.run-bar').click()
    wait(driver, 10, lambda d: "/runs/" in d.current_url, "no run page")
    why = css(driver, '#run tbody tr td.muted').text
    assert why.startswith("waiting for task feed.load of 2026-02-01T00:00:00+00:00 to be success"), why
    shot(driver, shots, "run-sensor-waiting")
    # kick_feed triggers feed and waits for its run; the end of feed.load brings the sensor's
    # check forward, so the report goes on long before its 30 s poke interval.
    mark_page(driver)
    trigger("kick_feed")
    wait(driver, 60, lambda d: css(d, "#run-state").text == "success", "the report did not finish")
    assert not_reloaded(driver), "the run page was reloaded"
    driver.get(base + "/dags/kick_feed/grid")
    css(driver, '#grid th.run-col a.run-bar').click()
    wait(driver, 60, lambda d: css(d, "#run-state").text == "success", "kick_feed did not succeed")
    child = css(driver, "a.run-child")
    assert child.text == "feed / manual__2026-02-01T00:00:00+00:00", child.text
    shot(driver, shots, "run-triggered-child")
    child.click()
    parent = wait(driver, 10, lambda d: d.find_elements(By.ID, "run-parent"), "no parent link")[0]
    assert parent.text == "kick_feed / manual__2026-02-01T00:00:00+00:00 / kick", parent.text
    shot(driver, shots, "run-triggered-by")

    step("log out")
    css(driver, "#logout").click()
    wait(driver, 10, lambda d: "/login" in d.current_url, "no login page after logout")
    driver.get(base + "/")
    wait(driver, 10, lambda d: "/login" in d.current_url, "still logged in after logout")
    shot(driver, shots, "logged-out")


if __name__ == "__main__":
    main()
