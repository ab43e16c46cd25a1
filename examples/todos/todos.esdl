// A todo list: one entity per list, items keyed by an id the caller chooses.
version = "0.1.0"

aggregate Todos {
  add_todo(id: String, description: String) -> AddedTodo
  complete_todo(id: String) -> CompletedTodo
  remove_todo(id: String) -> RemovedTodo
}

event AddedTodo {
  id: String
  description: String
}

event CompletedTodo {
  id: String
}

event RemovedTodo {
  id: String
}
