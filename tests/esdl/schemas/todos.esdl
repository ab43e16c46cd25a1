version = "1.0.0"

aggregate Todos {
  add_todo(id: String, description: String) -> TodoAdded
  complete_todo(id: String) -> TodoCompleted?
  remove_todo(id: String) -> TodoRemoved
}

event TodoAdded { id: String  description: String }
event TodoCompleted { id: String }
event TodoRemoved { id: String }
