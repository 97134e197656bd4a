"""Who carries a message: the texting providers behind one port (base.py), and SMTP for email.

    base.py       the port: what a provider does (send, verify and read its webhooks, a numbers
                  account) and the types it answers in (InboundMessage, StatusReport, OwnedNumber …)
    registry.py   which provider carries what, built once per app from the settings
    fields.py     checking a webhook's JSON field by field, for every provider's parser
    simulator.py  the embedded provider of development and the demo
    <name>/       a package for each real provider (webapp.config.BUILT_IN_PROVIDERS names them)
    smtp.py       email

Adding a texting provider is one package and one setting:

1. A package (anywhere importable) with `create(app) -> provider`, where the provider has what
   `base.Provider` lists: `label`, `numbers` (owned, search, buy), `open`, `send`, `close`, `verify`,
   `parse_inbound` and `parse_status`. Its failures are the port's: `Rejected`, `TemporaryFailure` or
   `OutcomeUnknown` from `send`, `BadPayload` from the parsers, `NumbersUnavailable` or `NumberNotBought`
   from the account. It reads its own settings from `app.config` when it needs them.
2. Its name in TEXTING_PROVIDERS: `TEXTING_PROVIDERS=acme=mycompany.relay_acme` (comma-separated for
   more). Its webhooks are then `/webhooks/acme/inbound` and `/webhooks/acme/status`; numbers picked
   from its account record `acme`, and what is sent from them goes through it. MESSAGING_PROVIDER=acme
   would make it the default, for numbers typed in by staff.

The tests hold such a package (tests/texting_provider.py), registered from the settings alone.
"""
