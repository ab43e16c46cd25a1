// A TypeScript guest that misbehaves on request: the host must survive every one of
// these exactly as with the Python chaos guest (tests/wasm/guests/chaos).
version = "0.2.0"

aggregate Chaos {
  spin() -> Done
  hog(megabytes: Int) -> Done
  crash(message: String) -> Done
  read_env(name: String) -> Done
  chat(message: String) -> Done
  refuse(reason: String) -> Done
  skip(reason: String?) -> Done
  wrong_event() -> Done
  clock() -> Done
  roll() -> Done
}

event Done {
  detail: String
}

event Other {
  detail: String
}
