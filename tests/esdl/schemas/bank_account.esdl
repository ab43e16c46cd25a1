version = "0.1.0"

// A bank account: opened once, funds move in and out, closed at the end.
aggregate BankAccount {
  open_account(initial_balance: Long) -> OpenedAccount
  deposit_funds(amount: Long) -> DepositedFunds
  withdraw_funds(amount: Long) -> WithdrewFunds
  transfer(
    amount: Long,
    to: Account,
  ) -> (SentFunds | ReceivedFunds?)
  close_account() -> ClosedAccount?
}

event OpenedAccount { initial_balance: Long }
event DepositedFunds { amount: Long  balance: Long }
event WithdrewFunds { amount: Long, balance: Long }
/* Transfers name the other account. */
event SentFunds {
  amount: Long
  to: Account
}
event ReceivedFunds { amount: Long  from_account: Account? }
event ClosedAccount {}

type Account {
  id: String
  tags: [String?]?
}
