// The BankAccount aggregate: no overdrafts, no business on unopened or closed accounts.
import { Context, Rejected } from "@thalo/sdk";
import {
  BankAccountBase,
  ClosedAccount,
  DepositedFunds,
  OpenedAccount,
  WithdrewFunds,
  type DepositFundsCommand,
  type OpenAccountCommand,
  type WithdrawFundsCommand,
} from "./bank_account_schema.js";

export class BankAccount extends BankAccountBase {
  opened = false;
  closed = false;
  balance = 0;

  private requireOpen(): void {
    if (!this.opened) throw new Rejected("the account is not open");
    if (this.closed) throw new Rejected("the account is closed");
  }

  private static requirePositive(amount: number): void {
    if (amount <= 0) throw new Rejected(`amount must be positive, got ${amount}`);
  }

  handleOpenAccount(ctx: Context, { initial_balance }: OpenAccountCommand) {
    if (this.opened) throw new Rejected("the account is already open");
    if (initial_balance < 0) {
      throw new Rejected(`the initial balance must not be negative, got ${initial_balance}`);
    }
    return OpenedAccount({ initial_balance });
  }

  handleDepositFunds(ctx: Context, { amount }: DepositFundsCommand) {
    this.requireOpen();
    BankAccount.requirePositive(amount);
    return DepositedFunds({ amount, balance: this.balance + amount });
  }

  handleWithdrawFunds(ctx: Context, { amount }: WithdrawFundsCommand) {
    this.requireOpen();
    BankAccount.requirePositive(amount);
    if (amount > this.balance) {
      throw new Rejected(`insufficient funds: balance ${this.balance}, withdrawal ${amount}`);
    }
    return WithdrewFunds({ amount, balance: this.balance - amount });
  }

  handleCloseAccount() {
    this.requireOpen();
    if (this.balance !== 0) {
      throw new Rejected(`only an account with a zero balance can close (balance ${this.balance})`);
    }
    return ClosedAccount({});
  }

  applyOpenedAccount(event: OpenedAccount) {
    this.opened = true;
    this.balance = event.initial_balance;
  }

  applyDepositedFunds(event: DepositedFunds) {
    this.balance = event.balance;
  }

  applyWithdrewFunds(event: WithdrewFunds) {
    this.balance = event.balance;
  }

  applyClosedAccount() {
    this.closed = true;
  }
}
