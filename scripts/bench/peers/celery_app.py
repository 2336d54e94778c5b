"""The Celery + Redis design of the benchmark's peer row (scripts/bench/peers.ts).

One Celery task runs one 3-step workflow: each step is one Postgres transaction of the same shape
as the benchmark's ceiling (scripts/bench/ceiling.ts): update the process row fenced by its lease
token and insert a step row with a ~200-byte state, in one statement. The tables are
bench_peers.processes and bench_peers.process_steps, copies of the orchestrator's tables (same
columns, indexes and storage settings, none of its triggers); the enqueue script inserts one
process row per workflow with its lease token and sends the task through Redis. No result
backend: completions are counted in Postgres.

The fan-out (`fan_out`): one task inserts a parent row and N process rows (one INSERT), then sends
one workflow task per row, the Celery design of one task starting N children.

Environment: BENCH_PG_URL (libpq URL of the bench database), BENCH_BROKER_URL (redis://...).
"""

import json
import os
import uuid

import psycopg2
from celery import Celery
from celery.signals import worker_process_init, worker_ready

app = Celery("bench_peers", broker=os.environ["BENCH_BROKER_URL"])
app.conf.update(
    task_ignore_result=True,
    result_backend=None,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_send_task_events=False,
    task_send_sent_event=False,
)

STEPS = ("One", "Two", "Three")
PAYLOAD = "x" * 180

# The ceiling's statement, with the process status as a parameter ('completed' on the last step).
COMMIT = """PREPARE step_commit (uuid, integer, text, jsonb, uuid, text) AS
  WITH p AS (
    UPDATE bench_peers.processes
       SET step_index = $2, last_step = $3, status = $6, last_modified_at = now(),
           lease_expires_at = now() + make_interval(secs => 30)
     WHERE id = $1 AND lease_token = $5
    RETURNING id)
  INSERT INTO bench_peers.process_steps (process_id, step_index, name, status, state, started_at)
  SELECT id, $2, $3, 'success', $4, now() FROM p"""

_conn = None


def _connect():
    global _conn
    _conn = psycopg2.connect(os.environ["BENCH_PG_URL"], application_name="bench-celery")
    _conn.autocommit = True  # one statement = one transaction, as in the ceiling
    with _conn.cursor() as cur:
        cur.execute(COMMIT)


@worker_process_init.connect
def _child_started(**_kwargs):
    # Each prefork child opens its own connection once (a connection is not shared across fork).
    _connect()
    os.write(2, b"peer process ready\n")


@worker_ready.connect
def _ready(**_kwargs):
    os.write(2, b"peer worker ready\n")


@app.task(name="bench_peers.run_workflow")
def run_workflow(process_id, token):
    if _conn is None:
        _connect()
    with _conn.cursor() as cur:
        for index, name in enumerate(STEPS):
            status = "completed" if index == len(STEPS) - 1 else "running"
            state = json.dumps({"payload": PAYLOAD, "n": index})
            cur.execute(
                "EXECUTE step_commit (%s, %s, %s, %s, %s, %s)",
                (process_id, index, name, state, token, status),
            )
            if cur.rowcount != 1:
                raise RuntimeError(f"lease lost for process {process_id} at step {index}")


@app.task(name="bench_peers.fan_out")
def fan_out(n):
    if _conn is None:
        _connect()
    parent = str(uuid.uuid4())
    token = str(uuid.uuid4())
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with _conn.cursor() as cur:
        # The parent's started_at is the fan-out's start (bench: to the last child's commit).
        cur.execute(
            """INSERT INTO bench_peers.processes (id, workflow_name, status, target, is_task)
               VALUES (%s, 'peer_fanout', 'waiting', 'system', true)""",
            (parent,),
        )
        cur.execute(
            """INSERT INTO bench_peers.processes
                 (id, workflow_name, status, target, lease_token, lease_owner, parent_id, parent_step)
               SELECT unnest(%s::uuid[]), 'peer_noop', 'created', 'modify', %s, 'celery', %s, 0""",
            (ids, token, parent),
        )
    with app.producer_or_acquire() as producer:
        for pid in ids:
            run_workflow.apply_async((pid, token), producer=producer)
