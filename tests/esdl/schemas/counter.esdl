version = "0.1.0"

// A counter that goes up and down.
aggregate Counter {
  increment(amount: Int) -> Incremented
  decrement(amount: Int) -> Decremented
}

// Each event carries the amount and the count after it.
event Incremented {
  amount: Int
  count: Long
}

event Decremented {
  amount: Int
  count: Long
}
