"""Great Expectations 1.x suites, kept as code, that prove the financials reconcile with Mollie."""
