# A relation to a type that is not declared (Organisation instead of Org).
actor User {}

resource Org {
  roles = ["member"];
}

resource Repo {
  roles = ["reader"];
  relations = { parent: Organisation };

  "reader" if "member" on "parent";
}
