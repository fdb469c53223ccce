"""The provider: ``client`` (one cleanup with its attempts), ``transport`` (one POST), ``retry_policy``
(what an answer means, how long to wait), ``rate_limiter`` (the request budget every execution shares)."""
