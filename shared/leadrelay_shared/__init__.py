"""The common library of leadrelay: event contracts and the delivery plumbing every service shares.

It holds only what two or more services must agree on (event schemas, the CloudEvents codec,
the transactional outbox, idempotent consumption, signed webhook delivery). Business rules live
in the services.
"""
