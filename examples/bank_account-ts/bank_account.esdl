// A bank account: opened with an initial balance, closed only at zero.
version = "0.1.0"

aggregate BankAccount {
  open_account(initial_balance: Long) -> OpenedAccount
  deposit_funds(amount: Long) -> DepositedFunds
  withdraw_funds(amount: Long) -> WithdrewFunds
  close_account() -> ClosedAccount
}

event OpenedAccount {
  initial_balance: Long
}

event DepositedFunds {
  amount: Long
  balance: Long
}

event WithdrewFunds {
  amount: Long
  balance: Long
}

event ClosedAccount {}
