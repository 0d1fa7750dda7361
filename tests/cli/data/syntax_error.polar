actor User {}

resource Doc {
  permissions = ["read" "edit"];
}
