"""Enqueues N workflows for the Celery peer: one process row each (inserted in one statement,
leased with one token), then one task per workflow sent to Redis. Prints the count sent.

Usage: BENCH_PG_URL=... BENCH_BROKER_URL=... python3 enqueue.py N
       ... python3 enqueue.py --fanout N   (one fan_out task that does the same from the worker)
"""

import os
import sys
import uuid

import psycopg2

from celery_app import fan_out, run_workflow

if sys.argv[1] == "--fanout":
    fan_out.delay(int(sys.argv[2]))
    print("enqueued the fan-out", flush=True)
    sys.exit(0)

n = int(sys.argv[1])
ids = [str(uuid.uuid4()) for _ in range(n)]
token = str(uuid.uuid4())
conn = psycopg2.connect(os.environ["BENCH_PG_URL"], application_name="bench-celery-enqueue")
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute(
        """INSERT INTO bench_peers.processes
             (id, workflow_name, status, target, lease_token, lease_owner)
           SELECT unnest(%s::uuid[]), 'peer_noop', 'created', 'modify', %s, 'celery'""",
        (ids, token),
    )
conn.close()
with run_workflow.app.producer_or_acquire() as producer:
    for pid in ids:
        run_workflow.apply_async((pid, token), producer=producer)
print(f"enqueued {n}", flush=True)
