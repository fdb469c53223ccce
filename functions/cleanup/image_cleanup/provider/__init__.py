"""The providers behind the ``Cleaner`` port: ``client`` (one cleanup at one provider, with its
attempts), each provider's HTTP contract and limits (``novita``, ``clipdrop``, ``iopaint``, all shaped
as ``wire.Wire``), ``transport`` (one POST) and ``retry_policy`` (the verdicts, backoff, Retry-After)."""
