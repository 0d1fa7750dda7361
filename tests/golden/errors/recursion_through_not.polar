# trusted depends on the absence of suspicious, which depends on the absence of trusted.
actor User {}

trusted(user: User) if is_employee(user, true) and not suspicious(user);
suspicious(user: User) if is_employee(user, true) and not trusted(user);

allow(user: User, "read", _: User) if trusted(user);
