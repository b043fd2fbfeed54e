"""Celery tasks for the result-backend incident (DESIGN.md incident 2).

The worker takes tasks from a Redis broker. Nothing in the task touches a
database, yet with a `db+mysql://` result backend configured every task's
result is written to MySQL after it runs, and a prefork pool child opens a
new connection for each write (Celery gives forked children a NullPool).
Setting IGNORE_RESULT=1 applies the fix: task_ignore_result.
"""

import os

from celery import Celery

BROKER = os.environ.get("BROKER_URL", "redis://127.0.0.1:16380/0")
BACKEND = os.environ.get("RESULT_BACKEND", "db+mysql://snag:snag@127.0.0.1:13306/snag")

app = Celery("tasks", broker=BROKER, backend=BACKEND)
app.conf.update(
    task_ignore_result=os.environ.get("IGNORE_RESULT") == "1",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task
def add(x, y):
    return x + y
