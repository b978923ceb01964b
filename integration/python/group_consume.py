"""confluent-kafka (librdkafka) consumer groups, printing a JSON summary on stdout.

Usage:
  group_consume.py pair BOOTSTRAP TOPIC GROUP COUNT STRATEGY
      Two consumers join GROUP (each in its own thread, partition.assignment.strategy STRATEGY, e.g. range or
      cooperative-sticky) and share TOPIC's partitions; once both hold an assignment, COUNT records (value
      py-<i>) are produced and consumed, every poll batch committed synchronously. Reports what each consumer
      received and its assignment.
  drain BOOTSTRAP TOPIC GROUP
      One consumer joins GROUP and reads until every assigned partition is at its end. Reports what it read
      (nothing, when the group committed everything before), the committed offsets and the high watermarks.

Every wait is bounded (WAIT_S); a timeout is reported in "errors", never a hang.
"""
import json
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

WAIT_S = 60
POLL_S = 0.2
BATCH_MAX = 500


def consumer_config(bootstrap, group, **extra):
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        # Short sessions and heartbeats keep rebalances quick (the broker allows 1 s sessions in this test).
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    config.update(extra)
    return config


class Member(threading.Thread):
    """A consumer that polls in its own thread until told to stop, then commits and closes."""

    def __init__(self, name, bootstrap, topic, group, strategy):
        super().__init__(name=name, daemon=True)
        self.topic = topic
        self.consumer = Consumer(consumer_config(bootstrap, group, **{"client.id": name, "partition.assignment.strategy": strategy}))
        self.assignment = set()
        self.received = []
        self.commits = 0
        self.errors = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    # Eager protocols revoke everything and assign the whole new set; cooperative ones pass only the partitions
    # that move. Adding and removing covers both.
    def on_assign(self, consumer, partitions):
        with self.lock:
            self.assignment |= {p.partition for p in partitions}

    def on_revoke(self, consumer, partitions):
        with self.lock:
            self.assignment -= {p.partition for p in partitions}

    def run(self):
        try:
            self.consumer.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
            while not self.stop.is_set():
                batch = self.consumer.consume(num_messages=BATCH_MAX, timeout=POLL_S)
                got = False
                for msg in batch:
                    if msg.error():
                        self.errors.append(str(msg.error()))
                        continue
                    got = True
                    with self.lock:
                        self.received.append((msg.partition(), msg.offset(), msg.value().decode()))
                if got:
                    # Synchronous: a commit that fails raises, and is reported.
                    self.consumer.commit(asynchronous=False)
                    self.commits += 1
        except Exception as err:  # reported, the test fails on it
            self.errors.append(repr(err))
        finally:
            self.consumer.close()

    def count(self):
        with self.lock:
            return len(self.received)

    def current_assignment(self):
        with self.lock:
            return sorted(self.assignment)


def wait_for(what, cond, errors):
    deadline = time.monotonic() + WAIT_S
    while not cond():
        if time.monotonic() > deadline:
            errors.append(f"timed out waiting for {what}")
            return False
        time.sleep(0.05)
    return True


def pair(bootstrap, topic, group, count, strategy):
    errors = []
    members = [Member(f"py-member-{i}", bootstrap, topic, group, strategy) for i in (1, 2)]
    for m in members:
        m.start()
    started = time.monotonic()

    def shared():
        a, b = (m.current_assignment() for m in members)
        return len(a) > 0 and len(b) > 0 and sorted(a + b) == list(range(len(a) + len(b))) and len(a) + len(b) == 4

    assignments = None
    if wait_for("both members holding partitions", shared, errors):
        assignments = [m.current_assignment() for m in members]
        group_formed_s = time.monotonic() - started
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
        for i in range(count):
            while True:
                try:
                    producer.produce(topic, key=str(i).encode(), value=f"py-{i}".encode())
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
        remaining = producer.flush(WAIT_S)
        if remaining:
            errors.append(f"{remaining} records not delivered")
        wait_for(f"{count} records consumed", lambda: sum(m.count() for m in members) >= count, errors)
        # Anything beyond COUNT (a duplicate) would arrive right after; give it a moment to show up.
        time.sleep(0.5)
    else:
        group_formed_s = None
    for m in members:
        m.stop.set()
    for m in members:
        m.join(WAIT_S)
        if m.is_alive():
            errors.append(f"{m.name} did not stop")
    print(json.dumps({
        "errors": errors + [e for m in members for e in m.errors],
        "assignments": assignments,
        "groupFormedS": group_formed_s,
        "members": [{"name": m.name, "commits": m.commits, "received": m.received} for m in members],
    }))


def drain(bootstrap, topic, group):
    errors = []
    consumer = Consumer(consumer_config(bootstrap, group, **{"enable.partition.eof": True, "client.id": "py-drain"}))
    assigned = []
    at_end = set()
    received = []
    consumer.subscribe([topic], on_assign=lambda c, ps: assigned.extend(p.partition for p in ps))
    deadline = time.monotonic() + WAIT_S
    while not (assigned and at_end >= set(assigned)):
        if time.monotonic() > deadline:
            errors.append(f"timed out: assigned {assigned}, at end {sorted(at_end)}")
            break
        msg = consumer.poll(POLL_S)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(msg.partition())
            else:
                errors.append(str(msg.error()))
            continue
        received.append((msg.partition(), msg.offset(), msg.value().decode()))
    parts = [TopicPartition(topic, p) for p in sorted(assigned)]
    committed = {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=10)} if parts else {}
    high = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in parts}
    consumer.close()
    print(json.dumps({"errors": errors, "assigned": sorted(assigned), "received": received, "committed": committed, "high": high}))


def main():
    mode = sys.argv[1]
    if mode == "pair":
        pair(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
    elif mode == "drain":
        drain(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    try:
        main()
    except KafkaException as err:
        print(json.dumps({"errors": [repr(err)]}))
