"""Pipeline benchmark: what one ``moodstream worker`` sustains on this machine, end to end.

    .venv/bin/python -m benchmarks.pipeline [--quick] [--profile auto|always|never]
        [--blas-check auto|always|never] [--reviews sim|amazon] [--set batch_wait_ms=10 ...]
        [--worker-env OPENBLAS_NUM_THREADS=1 ...]
        [--only ceiling,mixed,floor,clicks,clicks2,latency,memory]

One run (about 8 minutes; ``--quick`` about 4) measures, with the int8 model on the CPU:

1. ``ceiling``: texts/s of the model alone (``OnnxSentimentModel.predict``, batches of 32 in
   arrival order, which ``predict`` sorts by length and cuts) on the review + chat texts of the
   mixed stream; also at the batch a worker actually passes (the texts among batch_events
   events, at most batch_size).
2. ``mixed``: N events (60% clicks, 25% chats, 15% reviews; simulator, demo catalog seed 0 / 500
   items) are produced to a real Kafka 4 broker first, then one real ``moodstream worker``
   subprocess starts; its ``/metrics`` are scraped every 0.2 s. Sustained rate = events folded
   between the 10% and 90% marks (or the phase's time cap) / time between them. Texts/s inside
   the pipeline vs the ceiling.
3. ``floor``: ``benchmarks/floor.py``'s ``table_send`` Faust worker (consume, a 2 KB table write
   and a 1 KB send per event, no moodstream code) drains the clicks topic of the next phase on
   the same broker: the framework floor of this run (``benchmarks/pipeline/scale.py``).
   ``clicks``: the same clicks drained by a worker; its events/s over the floor's is the ratio
   the scale-out issue sets (>= 0.65); the item-state freshness p99 of its board (the
   ``moodstream_board_freshness_seconds`` histogram) at that sustained rate (<= 2 s).
   ``clicks2``: the same clicks drained by two workers of one consumer group, summed and per
   worker. Below the clicks target, diagnostics follow: cProfile of a
   second worker on the same topics (switched on at the 5% mark for <= 30 s; wall clock of the
   event loop thread), and the ``Processor`` alone without Kafka or Faust, each step timed.
4. ``latency``: a fresh worker with ``recommend_interval_ms=0``; events paced at half the mixed
   rate with ``ts`` = wall clock at send; event-to-recommendation latency from the worker's
   ``latency_ms`` and from the benchmark's receive time (end to end).
5. ``memory``: in a child process, a simulated month of history for a sample of users is folded
   through ``Processor`` into dict tables (a stub model stands in for scoring: state size does not
   depend on score values); bytes per user of the serialized values, and the RSS growth of
   tables holding 100k users (sample states replicated, each user's values its own objects).

CPU used by other jobs on the machine is measured alongside (``others_cores``): figures taken
while other jobs run are not the machine's. Writes benchmarks/results/pipeline.json and .md.
"""
