"""The broker's queue names, defined once (a leaf: imports nothing, so the settings, the
Celery app, the broker inspection and the job kinds can all read it).

A job worker takes its queues in the order of JOB_QUEUES (kombu's "priority" queue order,
set in the settings): whenever it has a free slot it takes the first message of the first
non-empty queue, so an interactive job never waits behind batch items already queued.
"""

from __future__ import annotations

# Short jobs a person waits for on screen: a chat answer, a section rewrite, the model check.
INTERACTIVE = "interactive"
# Uploaded documents to read and index (a person waits for them too, but longer).
INGEST = "ingest"
# Long or bulk LLM work: API batch items, whole texts, compression, the needle test.
BATCH = "batch"
# The job sweeper alone, on a worker that runs nothing else (it must never wait).
CONTROL = "control"

JOB_QUEUES = (INTERACTIVE, INGEST, BATCH)
