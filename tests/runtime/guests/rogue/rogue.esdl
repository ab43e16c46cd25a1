// A guest whose output or snapshots the host cannot use, on request (issue 11).
version = "0.1.0"

aggregate Rogue {
  note(text: String) -> Noted
  overflow() -> Measured
  arm(mode: String) -> Armed
  dawdle(rounds: Int) -> Noted
}

event Noted {
  text: String
}

event Measured {
  value: Double
}

event Armed {
  mode: String
}
