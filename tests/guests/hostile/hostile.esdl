// The hostile guest of issue 11: on request it abuses the host's budgets (slow,
// bulky or memory-hungry commands and replays, randomness, log floods) and
// returns output or snapshots the host cannot use. Every guest item of issue 11
// is reproduced with it.
version = "0.1.0"

aggregate Hostile {
  note(text: String) -> Noted
  overflow() -> Measured
  arm(mode: String) -> Armed
  dawdle(rounds: Int) -> Noted
  burn(loops: Int) -> Burned
  bulk(megabytes: Int) -> Bulk
  hold(megabytes: Int) -> Held
  hog(megabytes: Int) -> Held
  roll() -> Rolled
  pick() -> Picked
  flood(lines: Int, kilobytes: Int) -> Flooded
  greet() -> Greeted
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

event Burned {
  loops: Int
}

event Bulk {
  blob: String
}

event Held {
  megabytes: Int
}

event Rolled {
  note: String
}

event Picked {
  value: Float
}

event Flooded {
  lines: Int
}

event Greeted {
  note: String
}
