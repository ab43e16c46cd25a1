/* Every form of the language in one schema: scalars, optionals, arrays,
   nested custom types, event sets, commands over several lines. */
version = "2.1.0-rc.1+build.5"

aggregate Everything {
  create(
    name: String,
    size: Int,
    total: Long,
    ratio: Float,
    precise: Double,
    enabled: Bool,
    blob: Bytes,
  ) -> Created
  tag(tags: [String], owner: Owner?, scores: [[Int?]]?) -> (Tagged | Noted?)
  touch() -> Touched?
}

event Created {
  name: String, size: Int, total: Long
  ratio: Float, precise: Double, enabled: Bool
  blob: Bytes
  maybe_blob: Bytes?
}
event Tagged { tags: [String]  owner: Owner?  scores: [[Int?]]? }
event Noted { notes: [Note?]? }
event Touched {}

type Owner {
  id: String
  avatar: Bytes?
  history: [Note]
}
type Note { text: String  attachments: [Bytes]? }
