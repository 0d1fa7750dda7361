# `on "prent"` names a relation the block does not declare.
actor User {}

resource Org {
  roles = ["member"];
}

resource Repo {
  roles = ["reader"];
  relations = { parent: Org };

  "reader" if "member" on "prent";
}
