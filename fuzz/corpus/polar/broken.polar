resource R { roles = ["a" "b"]; "x" if "y" in "z"; }
f(x) if (((g(x);
}}}
"unterminated
ÿş
