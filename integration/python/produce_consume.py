"""confluent-kafka (librdkafka) produce, then consume by assign (no consumer group), printing a JSON summary.

Usage: produce_consume.py BOOTSTRAP TOPIC COUNT
"""
import json
import sys

from confluent_kafka import Consumer, Producer, TopicPartition, KafkaException

bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

delivered = []
errors = []


def on_delivery(err, msg):
    if err is not None:
        errors.append(str(err))
    else:
        delivered.append((msg.partition(), msg.offset(), msg.value().decode()))


p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "compression.type": "lz4"})
for i in range(count):
    while True:
        try:
            p.produce(topic, value=f"py-{i}".encode(), key=str(i).encode(), partition=0, on_delivery=on_delivery)
            break
        except BufferError:
            p.poll(0.1)
    p.poll(0)
remaining = p.flush(30)

c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-assign-only", "enable.auto.commit": False,
              "enable.partition.eof": True})
c.assign([TopicPartition(topic, 0, 0)])
consumed = []
eof = False
while not eof:
    msg = c.poll(10)
    if msg is None:
        break
    if msg.error():
        if msg.error().code() == -191:  # _PARTITION_EOF
            eof = True
            continue
        raise KafkaException(msg.error())
    consumed.append((msg.partition(), msg.offset(), msg.value().decode()))
c.close()

print(json.dumps({"remaining": remaining, "errors": errors, "delivered": delivered, "consumed": consumed, "eof": eof}))
