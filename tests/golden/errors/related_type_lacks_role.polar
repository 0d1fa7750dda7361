# The related type (Org) has no role "owner".
actor User {}

resource Org {
  roles = ["member"];
}

resource Repo {
  roles = ["reader"];
  relations = { parent: Org };

  "reader" if "owner" on "parent";
}
