// A guest that misbehaves on request: the host must survive every one of these.
version = "0.2.0"

aggregate Chaos {
  spin() -> Done
  hog(megabytes: Int) -> Done
  crash(message: String) -> Done
  read_file(path: String) -> Done
  read_env(name: String) -> Done
  chat(message: String) -> Done
  refuse(reason: String) -> Done
  skip(reason: String?) -> Done
  wrong_event() -> Done
  clock() -> Done
}

event Done {
  detail: String
}

event Other {
  detail: String
}
