// A counter: the smallest aggregate worth testing.
version = "0.1.0"

aggregate Counter {
  increment(amount: Int) -> Incremented
  reset() -> Reset?
}

event Incremented {
  amount: Int
  count: Long
  sequence: Long?
}

event Reset {
  sequence: Long?
}
