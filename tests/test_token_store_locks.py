"""The refresh lock of each shipped token store, on its own: mutual exclusion between processes and
threads (a non-atomic read-modify-write under the lock loses no update and never overlaps), and the
lease rules of the Variable and Redis locks (a crashed holder is waited out, never forever; a lock
taken over is not released by its former holder).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from airflow_provider_contacts import auth
from airflow_provider_contacts.auth import FileTokenStore, TokenStoreError, VariableTokenStore, build_token_store
from test_token_store_concurrency import BYTECODE_ENV

PROCESSES, THREADS, ROUNDS = 3, 2, 6

LOCKER = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from pathlib import Path

    from airflow_provider_contacts.auth import build_token_store

    specs, work, rounds, threads = json.loads(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    stores = {spec: build_token_store(spec, "ghl_lock_test") for spec in specs}
    for store in stores.values():
        store.load()  # imports and connections before the start line
    (work / f"ready{os.getpid()}").touch()
    while not (work / "go").exists():
        time.sleep(0.005)
    overlaps = {spec: 0 for spec in specs}

    def run(spec):
        store = build_token_store(spec, "ghl_lock_test")  # one store object per thread: no shared state
        counter, marker = work / f"count{specs.index(spec)}", work / f"inside{specs.index(spec)}"
        for _ in range(rounds):
            with store.lock():
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    overlaps[spec] += 1
                value = int(counter.read_text() or 0) if counter.exists() else 0
                time.sleep(0.003)
                counter.write_text(str(value + 1))
                marker.unlink(missing_ok=True)

    for spec in specs:
        pool = [threading.Thread(target=run, args=(spec,)) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    print(json.dumps(overlaps))
    """
)


def _specs(monkeypatch, tmp_path) -> list[str]:
    specs = [f"variable:ghl_lock_{uuid.uuid4().hex[:6]}", f"file:{tmp_path}/tokens.json"]
    if os.environ.get("GHL_TEST_POSTGRES_URL"):
        monkeypatch.setenv("AIRFLOW_CONN_GHL_LOCK_PG", os.environ["GHL_TEST_POSTGRES_URL"])
        specs.append("sql:ghl_lock_pg")
    if os.environ.get("GHL_TEST_REDIS_URL"):
        pytest.importorskip("redis", reason="the Redis token store needs the redis package")
        monkeypatch.setenv("AIRFLOW_CONN_GHL_LOCK_REDIS", os.environ["GHL_TEST_REDIS_URL"])
        specs.append("redis:ghl_lock_redis")
    return specs


@pytest.mark.slow
def test_each_store_lock_excludes_other_processes_and_threads(monkeypatch, tmp_path, airflow_db) -> None:
    from airflow.configuration import conf

    specs = _specs(monkeypatch, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, **BYTECODE_ENV, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
           "AIRFLOW__CORE__FERNET_KEY": conf.get("core", "fernet_key", fallback="")}
    args = [sys.executable, "-c", LOCKER, json.dumps(specs), str(work), str(ROUNDS), str(THREADS)]
    logs = [tmp_path / f"locker{i}.log" for i in range(PROCESSES)]
    procs = []
    for log in logs:
        with log.open("w") as handle:
            procs.append(subprocess.Popen(args, env=env, cwd=tmp_path, stdout=handle, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 60
    while len(list(work.glob("ready*"))) < PROCESSES:
        dead = [i for i, p in enumerate(procs) if p.poll() is not None]
        assert not dead, logs[dead[0]].read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    (work / "go").touch()
    for proc, log in zip(procs, logs):
        proc.wait(timeout=120)
        assert proc.returncode == 0, log.read_text()[-3000:]
    overlaps = [json.loads(log.read_text().strip().splitlines()[-1]) for log in logs]
    print(f"{len(specs)} stores x {PROCESSES * THREADS * ROUNDS} locked increments in {time.monotonic() - started:.1f} s")
    for index, spec in enumerate(specs):
        assert sum(o[spec] for o in overlaps) == 0, spec
        assert int((work / f"count{index}").read_text()) == PROCESSES * THREADS * ROUNDS, spec


def _lease_value(owner: str, until: float) -> str:
    return json.dumps({"owner": owner, "until": until})


def test_variable_lock_waits_out_a_crashed_holder_and_cleans_up(airflow_db) -> None:
    store = VariableTokenStore(f"ghl_lock_{uuid.uuid4().hex[:6]}", lease_s=1.0)
    # A holder that crashed a moment ago: its lease runs for 0.6 s more; its flag has expired.
    auth._Variables.set(store._y, _lease_value("dead-host:1:abc", time.time() + 0.6))
    auth._Variables.set(store._b_prefix + "abc", _lease_value("dead-host:1:abc", time.time() - 1))
    started = time.monotonic()
    with store.lock():
        waited = time.monotonic() - started
        holder = json.loads(auth._Variables.get(store._y))["owner"]
    assert 0.5 < waited < 5 and holder.startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert auth._Variables.get(store._y) is None  # released
    auth._Variables.delete(store._b_prefix + "abc")


def test_variable_lock_without_key_listing_still_excludes(monkeypatch, airflow_db) -> None:
    # A Task SDK without Variable.keys(): the contended path waits instead of listing contenders.
    monkeypatch.setattr(auth._Variables, "keys", staticmethod(lambda prefix: None))
    key = f"ghl_lock_{uuid.uuid4().hex[:6]}"
    inside, overlaps, done = [0], [0], []

    def run() -> None:
        store = VariableTokenStore(key)
        store.unlisted_wait_s = 0.05
        for _ in range(5):
            with store.lock():
                inside[0] += 1
                if inside[0] > 1:
                    overlaps[0] += 1
                time.sleep(0.005)
                inside[0] -= 1
                done.append(1)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [0] and len(done) == 15


def test_variable_lock_times_out_with_the_holder_named(airflow_db) -> None:
    store = VariableTokenStore(f"ghl_lock_{uuid.uuid4().hex[:6]}")
    store.wait_s = 0.5
    # A live holder whose lease (written by a machine with a longer lease) outlasts our wait.
    auth._Variables.set(store._y, _lease_value("other-host:42:feed", time.time() + 120))
    started = time.monotonic()
    with pytest.raises(TokenStoreError, match="timed out after 0 s waiting for the refresh lock .held by other-host:42:feed"):
        with store.lock():
            pass
    assert time.monotonic() - started < 5
    auth._Variables.delete(store._y)


def test_file_lock_is_released_when_its_holder_dies(tmp_path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from airflow_provider_contacts.auth import FileTokenStore
        with FileTokenStore({str(tmp_path / 'tokens.json')!r}).lock():
            open({str(tmp_path / 'held')!r}, 'w').close()
            time.sleep(60)
        """)], env={**os.environ, **BYTECODE_ENV})
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "held").exists():
            assert time.monotonic() < deadline and holder.poll() is None
            time.sleep(0.05)
        holder.kill()  # dies inside the lock
        holder.wait()
        started = time.monotonic()
        with store.lock():
            assert time.monotonic() - started < 5
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_redis_lock_is_not_released_by_a_former_holder(monkeypatch) -> None:
    url = os.environ.get("GHL_TEST_REDIS_URL")
    if not url:
        pytest.skip("GHL_TEST_REDIS_URL is not set: the Redis token store tests need a server")
    pytest.importorskip("redis", reason="the Redis token store needs the redis package")
    monkeypatch.setenv("AIRFLOW_CONN_GHL_LOCK_REDIS", url)
    store = build_token_store("redis:ghl_lock_redis", f"ghl_lock_{uuid.uuid4().hex[:6]}")
    with store.lock():
        assert 0 < store.client.pttl(store.lock_key) <= store.lease_s * 1000
        store.client.set(store.lock_key, "next-holder")  # our lease ended; another worker took it
    assert store.client.get(store.lock_key) == "next-holder"  # compare-and-delete left it alone
    store.client.delete(store.lock_key)
