// A guest whose events break its own schema: the host must refuse to write them.
version = "0.1.0"

aggregate Liar {
  lie(count: Int) -> Said
  tell(count: Int) -> Said
}

event Said {
  count: Int
}
