"""Torture: `kill -9` ingest runs at random moments, resume them, and compare with a clean run.

On a PostgreSQL server, the script creates two databases, `torture_clean` and `torture_killed`,
migrates both (`manage.py migrate`), then:

1. clean: ingests generated Kaggle-layout CSV files and a CoinGecko stub (a local HTTP server
   serving multi-page /coins/markets answers built from the recorded rows in tests/fixtures)
   into `torture_clean`, each run left alone;
2. killed: ingests the same into `torture_killed`, sending SIGKILL to the `manage.py ingest`
   process at a random moment, again and again, each time starting the next run, which resumes;
   a CSV run that finishes before its kill moves on to the next file, a CoinGecko run that
   finishes moves the stub to its next generation of prices (the clean side then ingests those
   generations too);
3. one connection kill: `pg_terminate_backend` of the ingest's backend once a batch has been
   committed, then a resume;
4. a final resume run of each source to completion, then a comparison of every quote (asset slug,
   source, time, price and every other value column) and a checksum of them, with the counts of
   assets, raw units and rejections.

It prints `N kills: X lost, Y duplicated, Z runs left running` and the connection kill's outcome.
Every subprocess gets `ETL_STALE_RUN_SECONDS=1`: a run refused because the killed one still
looks alive (exit 3) is retried after a short sleep, however the run lifecycle detects a dead
owner. The databases are dropped at the end unless --keep.

    .venv/bin/python bench/torture.py --kills 20 --rows 40000
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "torture"
FIXTURE = (
    ROOT
    / "tests"
    / "fixtures"
    / "providers"
    / "coingecko_coins_markets_2023-01-02_gusgoros_5rows.json"
)
KAGGLE_HEADER = "SNo,Name,Symbol,Date,High,Low,Open,Close,Volume,Marketcap\n"
PER_PAGE = 250
EXIT_ALREADY_RUNNING = 3
STALE_SECONDS = 1
# Quote columns that say where a row came from, not what it says: they differ between any two
# databases and are left out of the comparison.
# A resumed run cuts a file into other chunks than a clean one, so the raw unit and the place in it
# differ too.
PROVENANCE = {"id", "asset_id", "raw_unit_id", "raw_position", "run_id"}
POLLER = "torture-poller"


# --- input ---------------------------------------------------------------------------------------


def write_csv(path: Path, *, rows: int, first_coin: int, coins: int) -> None:
    """`rows` Kaggle-layout rows of `coins` synthetic coins (numbered from `first_coin`), one a
    day each; files with other coin numbers share no quote."""
    days = -(-rows // coins)
    start = date(2016, 1, 1)
    with path.open("w") as handle:
        handle.write(KAGGLE_HEADER)
        for n in range(rows):
            coin, day = first_coin + n // days, n % days
            close = 0.5 + (coin * 613 + day * 7121) % 90_000 / 997
            handle.write(
                f"{n + 1},Torturecoin {coin:04d},TC{coin:04d},{start + timedelta(days=day)} "
                f"23:59:59,{close * 1.04:.8f},{close * 0.97:.8f},{close * 1.01:.8f},"
                f"{close:.8f},{close * 3e5:.2f},{close * 2e7:.2f}\n"
            )


class Stub:
    """CoinGecko's /coins/markets for `pages` pages, slowly; `generation` moves every row's
    price and time, so a finished run can be followed by one with new data."""

    def __init__(self, *, pages: int, delay: float) -> None:
        self.pages = pages
        self.delay = delay
        self.generation = 0
        self.requests = 0
        self._real = json.loads(FIXTURE.read_bytes())
        self._cache: dict[tuple[int, int], bytes] = {}
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                query = parse_qs(urlparse(self.path).query)
                page = int(query.get("page", ["1"])[0])
                body = stub.page(page)
                time.sleep(stub.delay)
                # OSError: the ingest was killed while waiting for this answer.
                with contextlib.suppress(OSError):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v3"

    def page(self, page: int) -> bytes:
        with self._lock:
            self.requests += 1
            key = (self.generation, page)
            if key not in self._cache:
                self._cache[key] = json.dumps(self._rows(*key)).encode()
            return self._cache[key]

    def _rows(self, generation: int, page: int) -> list[dict]:
        if not 1 <= page <= self.pages:
            return []
        rows = []
        for n in range((page - 1) * PER_PAGE, page * PER_PAGE):
            row = copy.deepcopy(self._real[n % len(self._real)])
            if n >= len(self._real):
                row.update(id=f"{row['id']}-t{n}", name=f"{row['name']} T{n}", symbol=f"t{n}")
            when = datetime.fromisoformat(row["last_updated"].replace("Z", "+00:00"))
            when += timedelta(minutes=generation)
            row["last_updated"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            row["current_price"] = round(row["current_price"] * (1 + generation / 100), 8)
            rows.append(row)
        return rows


# --- databases and processes ---------------------------------------------------------------------


def server_dsn(server: str, database: str) -> str:
    return f"{server.rstrip('/')}/{database}"


def query(server: str, database: str, sql: str, params: tuple = ()) -> list[tuple]:
    connection = psycopg2.connect(server_dsn(server, database))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def recreate(server: str, name: str) -> None:
    query(server, "postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    query(server, "postgres", f'CREATE DATABASE "{name}"')


def drop(server: str, name: str) -> None:
    query(server, "postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Env:
    server: str
    database: str
    extra: dict[str, str]
    _connection: Any = None

    def vars(self) -> dict[str, str]:
        return {
            **os.environ,
            "DEBUG": "true",
            "DATABASE_URL": server_dsn(self.server, self.database),
            "ETL_STALE_RUN_SECONDS": str(STALE_SECONDS),
            **self.extra,
        }

    def one(self, sql: str, params: tuple = ()) -> tuple:
        """The first row of `sql` on this database, over one connection kept open (named, so
        the connection kill spares it)."""
        if self._connection is None or self._connection.closed:
            self._connection = psycopg2.connect(
                server_dsn(self.server, self.database), application_name=POLLER
            )
            self._connection.autocommit = True
        with self._connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    def latest_run(self) -> int:
        return self.one("SELECT coalesce(max(id), 0) FROM runs_run")[0]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def start(env: Env, args: list[str]) -> subprocess.Popen:
    """`manage.py ...` in the background, its output in a file (a pipe nobody reads while the
    process runs could fill up and stall it)."""
    log = (OUT / "last-run.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env.vars(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return process


def last_line() -> str:
    text = (OUT / "last-run.log").read_text(errors="replace")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def wait_for_run(env: Env, before: int, process: subprocess.Popen) -> bool:
    """Whether the process started a run (a new Run row) before it exited."""
    while process.poll() is None:
        if env.latest_run() > before:
            return True
        time.sleep(0.02)
    return False


@dataclass
class Tally:
    kills: int = 0
    finished_before_kill: int = 0
    refused: int = 0  # exit 3: the previous run still counted as running
    failed: list[str] = field(default_factory=list)  # exit 1 of a run nobody killed


def run_to_completion(env: Env, args: list[str], tally: Tally, *, attempts: int = 60) -> float:
    """Run `manage.py ingest ...` until it exits 0; retry a refusal (exit 3) after a sleep."""
    started = time.monotonic()
    for _ in range(attempts):
        process = start(env, args)
        process.wait()
        if process.returncode == 0:
            return time.monotonic() - started
        if process.returncode == EXIT_ALREADY_RUNNING:
            tally.refused += 1
        else:
            tally.failed.append(f"exit {process.returncode}: {last_line()}")
        time.sleep(STALE_SECONDS + 0.2)
    sys.exit(
        f"manage.py {' '.join(args)} did not complete in {attempts} attempts; last: {last_line()}"
    )


def manage_or_exit(env: Env, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env.vars(),
        capture_output=True,
        text=True,
    )
    if result.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def kill_chain(
    env: Env,
    *,
    kills: int,
    work: list[list[str]],
    advance: Callable[[int], int | None],
    delay_max: float,
    rng: random.Random,
    tally: Tally,
) -> int:
    """SIGKILL runs of `work[i]` at a moment uniform in [0, delay_max) s after each has started
    its run (its Run row exists), each next run resuming; a run that finishes first calls
    `advance()` (new work, or None: no more) and is not a kill. Returns the kills that landed."""
    landed = 0
    index: int | None = 0
    while landed < kills and len(tally.failed) < 20:
        before = env.latest_run()
        process = start(env, work[index])
        if wait_for_run(env, before, process):
            try:
                process.wait(timeout=rng.uniform(0, delay_max))
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                landed += 1
                tally.kills += 1
                time.sleep(STALE_SECONDS + 0.1)  # so the next run may take the dead one over
                continue
        process.wait()
        if process.returncode == EXIT_ALREADY_RUNNING:
            tally.refused += 1
            time.sleep(STALE_SECONDS + 0.2)
        elif process.returncode == 0:
            tally.finished_before_kill += 1
            index = advance(index)
            if index is None:
                return landed
        else:
            tally.failed.append(f"exit {process.returncode}: {last_line()}")
    return landed


# --- comparison ----------------------------------------------------------------------------------


def quotes(server: str, database: str) -> list[tuple[str, ...]]:
    columns = [
        name
        for (name,) in query(
            server,
            database,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'prices_quote' ORDER BY column_name",
        )
        if name not in PROVENANCE
    ]
    selected = ", ".join(f"q.{name}" for name in columns)
    rows = query(
        server,
        database,
        f"SELECT a.slug, {selected} FROM prices_quote q JOIN prices_asset a ON a.id = q.asset_id",
    )
    key_at = [0, 1 + columns.index("source"), 1 + columns.index("observed_at")]
    return [(*(str(row[i]) for i in key_at), *(str(value) for value in row)) for row in rows]


def checksum(rows: list[tuple[str, ...]]) -> str:
    digest = hashlib.sha256()
    for row in sorted(rows):
        digest.update("\x1f".join(row).encode() + b"\n")
    return digest.hexdigest()[:16]


def count(server: str, database: str, table: str) -> int:
    return query(server, database, f"SELECT count(*) FROM {table}")[0][0]


def compare(server: str, clean_db: str, killed_db: str) -> dict:
    clean, killed = quotes(server, clean_db), quotes(server, killed_db)
    clean_by_key = {row[:3]: row[3:] for row in clean}
    killed_keys = Counter(row[:3] for row in killed)
    killed_by_key = {row[:3]: row[3:] for row in killed}
    lost = sum(1 for key in clean_by_key if key not in killed_keys)
    extra = sum(1 for key in killed_keys if key not in clean_by_key)
    repeated = sum(n - 1 for n in killed_keys.values() if n > 1)
    differing = sum(
        1
        for key, values in clean_by_key.items()
        if key in killed_by_key and killed_by_key[key] != values
    )
    return {
        "clean": len(clean),
        "killed": len(killed),
        "lost": lost,
        "duplicated": extra + repeated,
        "differing": differing,
        "checksum_clean": checksum(clean),
        "checksum_killed": checksum(killed),
        "assets": (
            count(server, clean_db, "prices_asset"),
            count(server, killed_db, "prices_asset"),
        ),
        "raw_units": (
            count(server, clean_db, "ingestion_rawunit"),
            count(server, killed_db, "ingestion_rawunit"),
        ),
        "rejections": (
            count(server, clean_db, "ingestion_rejection"),
            count(server, killed_db, "ingestion_rejection"),
        ),
    }


# --- the connection kill -------------------------------------------------------------------------


def connection_kill(env: Env, args: list[str], *, batch: int, tally: Tally) -> str:
    """Terminate the ingest's database backend once it has committed a batch; resume; describe."""
    before = env.latest_run()
    process = start(env, args)
    run_id = None
    waited = time.monotonic()
    while process.poll() is None and time.monotonic() - waited < 60:
        row = env.one(
            "SELECT id, records_read FROM runs_run WHERE id > %s ORDER BY id DESC LIMIT 1",
            (before,),
        )
        if row and row[1] >= batch:
            run_id = row[0]
            break
        time.sleep(0.02)
    if run_id is None:
        process.kill()
        process.wait()
        return "connection kill: missed (the run ended or committed nothing within 60 s)"
    terminated = query(
        env.server,
        "postgres",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s "
        "AND backend_type = 'client backend' AND application_name <> %s",
        (env.database, POLLER),
    )[0][0]
    cut_at = time.monotonic()
    try:
        process.wait(timeout=120)
        exit_text = (
            f"the ingest exited {process.returncode} {time.monotonic() - cut_at:.1f} s later"
        )
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        exit_text = "the ingest was still alive 120 s later and was killed"
    said = last_line()[:200]
    status, error = env.one(
        "SELECT status, left(error, 160) FROM runs_run WHERE id = %s", (run_id,)
    )
    refused_before = tally.refused
    resumed_after = run_to_completion(env, args, tally)
    shown_error = f" with error {error!r}" if error else ""
    return (
        f"connection kill: terminated {terminated} backend(s) of run {run_id} after a committed "
        f"batch; {exit_text}, saying {said!r}; the run was then '{status}'{shown_error}; the "
        f"resume was refused {tally.refused - refused_before} time(s) as already running and "
        f"completed {resumed_after:.1f} s after the killed process ended"
    )


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs in all (default 20)")
    parser.add_argument("--rows", type=int, default=40_000, help="rows of the main CSV file")
    parser.add_argument("--pages", type=int, default=16, help="pages of 250 coins in the stub")
    parser.add_argument("--page-delay", type=float, default=0.15, help="stub seconds per page")
    parser.add_argument("--batch-size", type=int, default=1000, help="ETL_BATCH_SIZE of runs")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the two databases")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)

    OUT.mkdir(parents=True, exist_ok=True)
    coins = max(1, args.rows // 2000)
    files = [OUT / "main.csv", OUT / "spare.csv", OUT / "connection.csv"]
    write_csv(files[0], rows=args.rows, first_coin=0, coins=coins)
    write_csv(files[1], rows=args.rows // 2, first_coin=1000, coins=max(1, coins // 2))
    write_csv(files[2], rows=args.rows // 2, first_coin=2000, coins=max(1, coins // 2))
    csv_args = [["ingest", "--source", "csv", "--path", str(path)] for path in files]
    api_args = ["ingest", "--source", "coingecko"]

    stub = Stub(pages=args.pages, delay=args.page_delay)
    extra = {
        "ETL_BATCH_SIZE": str(args.batch_size),
        "COINGECKO_BASE_URL": stub.base_url,
        "COINGECKO_API_KEY": "",
        "COINGECKO_API_PLAN": "",
        "COINGECKO_MAX_COINS": str(args.pages * PER_PAGE),
        "COINGECKO_CALLS_PER_MINUTE": "0",
        "HTTP_MAX_RETRIES": "1",
        "HTTP_BACKOFF_BASE_SECONDS": "0.1",
    }
    clean = Env(args.server, "torture_clean", extra)
    killed = Env(args.server, "torture_killed", extra)
    print(
        f"seed {seed}; {args.kills} kills; CSV files of {args.rows}, {args.rows // 2} and "
        f"{args.rows // 2} rows; stub {args.pages} pages of {PER_PAGE} at {args.page_delay} s"
    )
    began = time.monotonic()
    for env in (clean, killed):
        recreate(args.server, env.database)
        manage_or_exit(env, "migrate", "--no-input")

    # The clean side first: it also measures how long an undisturbed run takes.
    clean_tally = Tally()
    csv_seconds = run_to_completion(clean, csv_args[0], clean_tally)
    for more in csv_args[1:]:
        run_to_completion(clean, more, clean_tally)
    startup = run_to_completion(clean, csv_args[0], clean_tally)  # an unchanged file: startup
    api_seconds = run_to_completion(clean, api_args, clean_tally)
    print(
        f"clean: CSV main file {csv_seconds:.1f} s, unchanged re-run {startup:.1f} s, "
        f"CoinGecko {api_seconds:.1f} s"
    )

    tally = Tally()
    api_kills = args.kills // 2
    csv_kills = args.kills - api_kills
    # Resumed CSV runs go on where the last one stopped: kill moments spread so the kills
    # cover most of the file; a file finished early hands on to the spare.
    csv_delay = 3.5 * max(0.3, csv_seconds - startup) / max(1, csv_kills)

    def next_file(index: int) -> int | None:
        return index + 1 if index + 1 < 2 else None

    landed_csv = kill_chain(
        killed,
        kills=csv_kills,
        work=csv_args[:2],
        advance=next_file,
        delay_max=csv_delay,
        rng=rng,
        tally=tally,
    )

    def next_generation(index: int) -> int:
        stub.generation += 1
        return index

    landed_api = kill_chain(
        killed,
        kills=args.kills - landed_csv,
        work=[api_args],
        advance=next_generation,
        delay_max=api_seconds * 1.1,
        rng=rng,
        tally=tally,
    )
    outcome = connection_kill(killed, csv_args[2], batch=args.batch_size, tally=tally)
    for work in (*csv_args, api_args):
        run_to_completion(killed, work, tally)
    # The generations the killed side reached, each ingested once, undisturbed.
    final_generation = stub.generation
    for generation in range(1, final_generation + 1):
        stub.generation = generation
        run_to_completion(clean, api_args, clean_tally)

    result = compare(args.server, clean.database, killed.database)
    running = query(
        args.server, killed.database, "SELECT count(*) FROM runs_run WHERE status = 'running'"
    )[0][0]
    statuses = dict(
        query(args.server, killed.database, "SELECT status, count(*) FROM runs_run GROUP BY 1")
    )
    kills = landed_csv + landed_api
    print(
        f"kills: {landed_csv} in CSV runs, {landed_api} in CoinGecko runs; "
        f"{tally.finished_before_kill} run(s) finished before their kill; CoinGecko generations "
        f"0..{final_generation}; resumes refused as already running: {tally.refused}; "
        f"unexpected failures: {len(tally.failed)}"
    )
    for failure in tally.failed[:5]:
        print(f"  {failure}")
    print(f"runs in torture_killed by status: {statuses}")
    print(
        f"quotes: clean {result['clean']}, killed {result['killed']}; values differing "
        f"{result['differing']}; checksum clean {result['checksum_clean']}, killed "
        f"{result['checksum_killed']}; assets {result['assets'][0]} / {result['assets'][1]}; "
        f"raw units {result['raw_units'][0]} / {result['raw_units'][1]}; rejections "
        f"{result['rejections'][0]} / {result['rejections'][1]}"
    )
    print(outcome)
    print(f"took {time.monotonic() - began:.0f} s")
    print(
        f"{kills} kills: {result['lost']} lost, {result['duplicated']} duplicated, "
        f"{running} runs left running"
    )
    stub.server.shutdown()
    for env in (clean, killed):
        env.close()
    if not args.keep:
        for env in (clean, killed):
            drop(args.server, env.database)


if __name__ == "__main__":
    main()
