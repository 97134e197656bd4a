"""Credits: the balance, the ledger every debit and top-up writes, prices and automatic refills."""
