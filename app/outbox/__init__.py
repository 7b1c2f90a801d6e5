"""The transactional outbox: side effects that leave the process, written with the change that causes them."""
