// A counter that goes up and down. Each event carries the amount and the new
// count, so a reader of the stream never needs to add things up itself.
version = "0.1.0"

aggregate Counter {
  increment(amount: Int) -> Incremented
  decrement(amount: Int) -> Decremented
}

event Incremented {
  amount: Int
  count: Long
  // Position of the command message, when it came through a command stream:
  // the aggregate remembers it to ignore redeliveries.
  sequence: Long?
}

event Decremented {
  amount: Int
  count: Long
  sequence: Long?
}
