// A guest that abuses the host's budgets on request (issue 11): slow or bulky
// events, memory held across commands, randomness, log floods.
version = "0.1.0"

aggregate Hostile {
  burn(loops: Int) -> Burned
  bulk(megabytes: Int) -> Bulk
  hold(megabytes: Int) -> Held
  hog(megabytes: Int) -> Held
  roll() -> Rolled
  pick() -> Picked
  flood(lines: Int, kilobytes: Int) -> Flooded
  greet() -> Greeted
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
