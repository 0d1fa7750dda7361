# has_tag is declared over (Doc, Tag), but the test stores a User in the second argument.
actor User {}
resource Doc {}
resource Tag {}

declare has_tag(Doc, Tag);

test "tags" {
  setup {
    has_tag(Doc{"readme"}, Tag{"public"});
    has_tag(Doc{"readme"}, User{"alice"});
  }
  assert has_tag(Doc{"readme"}, Tag{"public"});
}
