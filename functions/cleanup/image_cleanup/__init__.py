"""The image cleanup function: a pair's use case, its stages, and the adapters behind its ports.

pipeline.py       the use case, one method per stage: pair → claim → load → region → call →
                  merge → encode → write → announce
ports.py          every Protocol the use case depends on, the null objects, the types crossing them
outcome.py        what a pair tells the world: summaries, error reports, events, provenance
naming.py, pairing.py   the naming rule and the pure pairing decision
failover.py       the providers in order of preference, one paid answer, an outage as a wait
circuit.py        each provider's circuit breaker, shared by every execution
waits.py          how long a record waits in the queue, and the one place that sends it back
imaging/          load, hd_strategy (the region sent, the answer brought back), merge, encode, limits
provider/         client (the attempts), novita, clipdrop, iopaint (each one's contract), transport,
                  retry_policy
aws/              s3_storage, staged_answers, secrets, eventbridge, idempotency, sqs_visibility,
                  rate_limiter, circuit_table, waiting_room
event_sources.py  the event shapes a record can take, read into object references
settings.py, errors.py, deadline.py, observability.py (with every metric's name), wiring.py
"""
