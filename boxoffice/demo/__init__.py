"""The demo source systems: a platform database and a Mollie sandbox that agree with each other."""
