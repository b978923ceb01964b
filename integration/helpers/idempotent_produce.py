"""Idempotent librdkafka producer for the connection-drop test: sends COUNT records "rec-<i>" (i zero-padded) to
partition 0 of TOPIC, CHUNK records at a time with PAUSE_MS between chunks (so the run lasts long enough for the
connection drops to hit it), waits for every delivery report and prints a JSON summary on stdout:
{"delivered": n, "errors": [...], "offsets": [offset of record i, ...], "remaining": n}.

Usage: idempotent_produce.py BOOTSTRAP TOPIC COUNT CHUNK PAUSE_MS
"""
import json
import logging
import sys
import time

from confluent_kafka import Producer

bootstrap, topic = sys.argv[1], sys.argv[2]
count, chunk, pause_ms = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

offsets = [-1] * count
errors = []
logs = []


class _Collect(logging.Handler):
    def emit(self, record):
        logs.append(record.getMessage())


rdkafka_log = logging.getLogger("rdkafka")
rdkafka_log.setLevel(logging.WARNING)
rdkafka_log.addHandler(_Collect())
rdkafka_log.propagate = False


def on_delivery(err, msg):
    i = int(msg.value()[4:])
    if err is not None:
        errors.append(f"record {i}: {err}")
    else:
        offsets[i] = msg.offset()


p = Producer({
    "bootstrap.servers": bootstrap,
    "enable.idempotence": True,  # acks=all, max.in.flight 5, infinite retries, sequence numbers
    "linger.ms": 5,
    "batch.num.messages": 500,
    "message.timeout.ms": 60000,
    # Drops come every few hundred ms: reconnect at once instead of backing off for seconds.
    "reconnect.backoff.ms": 10,
    "reconnect.backoff.max.ms": 100,
    "retry.backoff.ms": 10,
    "logger": rdkafka_log,
})

for start in range(0, count, chunk):
    for i in range(start, min(start + chunk, count)):
        while True:
            try:
                p.produce(topic, value=f"rec-{i:06d}".encode(), partition=0, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
    p.poll(0)
    time.sleep(pause_ms / 1000)
remaining = p.flush(60)
delivered = sum(1 for o in offsets if o >= 0)
print(json.dumps({"delivered": delivered, "errors": errors[:20], "error_count": len(errors), "offsets": offsets,
                  "remaining": remaining, "logs": logs[-50:]}))
