#include "engine/eval.h"

#include <algorithm>
#include <memory>

#include "absl/base/attributes.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "polar/polar.h"

namespace mandate::engine {

using facts::kNoSymbol;
using facts::SymbolTable;

// ---- Symbols and value conversion --------------------------------------------------------------

SymbolId RequestSymbols::Resolve(std::string_view s) {
  if (std::optional<SymbolId> id = SymbolTable::Global().Find(s)) return *id;
  size_t first = 0;  // local ids below kLocalBase + first are base_'s
  if (base_ != nullptr) {
    first = base_->local_.size();
    for (size_t i = 0; i < first; ++i) {
      if (base_->local_[i] == s) return kLocalBase + static_cast<SymbolId>(i);
    }
  }
  for (size_t i = 0; i < local_.size(); ++i) {
    if (local_[i] == s) return kLocalBase + static_cast<SymbolId>(first + i);
  }
  local_.emplace_back(s);
  return kLocalBase + static_cast<SymbolId>(first + local_.size() - 1);
}

std::string_view RequestSymbols::Name(SymbolId id) const {
  if (id >= kLocalBase) {
    size_t i = id - kLocalBase;
    if (base_ != nullptr) {
      if (i < base_->local_.size()) return base_->local_[i];
      i -= base_->local_.size();
    }
    return i < local_.size() ? std::string_view(local_[i]) : std::string_view();
  }
  return SymbolTable::Global().Name(id);
}

namespace {

std::string_view NameOf(SymbolId id, const RequestSymbols* symbols) {
  return symbols != nullptr ? symbols->Name(id) : SymbolTable::Global().Name(id);
}

template <typename Resolve>
absl::StatusOr<Value> ConvertValue(const TypedValue& v, Resolve&& resolve) {
  // Dispatch on the length first: this runs for every argument of every request.
  const std::string& t = v.type;
  if (t.size() == 6 && t == "String") return Value::String(resolve(v.id));
  if (t.size() == 7 && t == "Integer") {
    int64_t i;
    if (!absl::SimpleAtoi(v.id, &i)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid Integer id \"", v.id, "\""));
    }
    return Value::Integer(i);
  }
  if (t.size() == 7 && t == "Boolean") {
    if (v.id == "true") return Value::Boolean(true);
    if (v.id == "false") return Value::Boolean(false);
    return absl::InvalidArgumentError(absl::StrCat("invalid Boolean id \"", v.id, "\" (expected true or false)"));
  }
  if (t.empty()) return absl::InvalidArgumentError(absl::StrCat("value with id \"", v.id, "\" has no type"));
  return Value::Instance(resolve(t), resolve(v.id));
}

}  // namespace

absl::StatusOr<Value> ToValue(const TypedValue& v, RequestSymbols& symbols) {
  return ConvertValue(v, [&](std::string_view s) { return symbols.Resolve(s); });
}

absl::StatusOr<Value> ToInternedValue(const TypedValue& v) {
  return ConvertValue(v, [](std::string_view s) { return SymbolTable::Global().Intern(s); });
}

TypedValue ToTypedValue(const Value& v, const RequestSymbols* symbols) {
  switch (v.type) {
    case kNoSymbol:
      return {};
    case facts::kStringType:
      return {"String", std::string(NameOf(v.symbol(), symbols))};
    case facts::kIntegerType:
      return {"Integer", std::to_string(v.integer())};
    case facts::kBooleanType:
      return {"Boolean", v.boolean() ? "true" : "false"};
    default:
      return {std::string(NameOf(v.type, symbols)), std::string(NameOf(v.symbol(), symbols))};
  }
}

std::string ValueToPolar(const Value& v, const RequestSymbols* symbols) {
  polar::Term t;
  switch (v.type) {
    case kNoSymbol:
      t.kind = polar::Term::Kind::kWildcard;
      if (ConstraintOf(v) != kNoSymbol) t.type_name = std::string(NameOf(ConstraintOf(v), symbols));
      break;
    case facts::kStringType:
      t.kind = polar::Term::Kind::kString;
      t.str = std::string(NameOf(v.symbol(), symbols));
      break;
    case facts::kIntegerType:
      t.kind = polar::Term::Kind::kInteger;
      t.integer = v.integer();
      break;
    case facts::kBooleanType:
      t.kind = polar::Term::Kind::kBoolean;
      t.boolean = v.boolean();
      break;
    default:
      t.kind = polar::Term::Kind::kInstance;
      t.type_name = std::string(NameOf(v.type, symbols));
      t.str = std::string(NameOf(v.symbol(), symbols));
  }
  return polar::FormatTerm(t);
}

absl::Status RequestContext::AddContextFacts(const Program& program, const std::vector<Fact>& facts) {
  for (const Fact& f : facts) {
    std::optional<uint32_t> pred = program.FindPredicate(f.predicate, static_cast<uint32_t>(f.args.size()));
    if (!pred) continue;
    const uint32_t offset = static_cast<uint32_t>(context_values.size());
    for (const TypedValue& a : f.args) {
      absl::StatusOr<Value> v = ToValue(a, *symbols);
      if (!v.ok()) {
        context_values.resize(offset);
        return absl::InvalidArgumentError(absl::StrCat("context fact ", ToString(f), ": ", v.status().message()));
      }
      context_values.push_back(*v);
    }
    context.push_back({*pred, offset});
  }
  return absl::OkStatus();
}

// ---- Scratch state -----------------------------------------------------------------------------

namespace {

// A variable cell: bound (v.valid()), or unbound with a type constraint in v.bits, or an alias of
// another slot (alias = index + 1).
struct Slot {
  Value v;
  uint32_t alias = 0;
};

uint32_t BoundMask(const Value* in, uint32_t n) {
  uint32_t mask = 0;
  for (uint32_t i = 0; i < n; ++i) mask |= static_cast<uint32_t>(in[i].valid()) << i;
  return mask;
}

// SLD attempts that use more steps than this re-run tabled (when the step limit allows it).
constexpr uint64_t kFastStepBudget = 50'000;
// Stack the evaluation of one query may use. Each literal that succeeds nests its continuation, so
// long bodies inside deep recursion could otherwise exhaust a thread's stack within the depth limit.
constexpr uintptr_t kStackBudget = 2u << 20;

uintptr_t StackPosition() { return reinterpret_cast<uintptr_t>(__builtin_frame_address(0)); }

}  // namespace

struct Evaluator::Table {
  uint32_t pred = 0;
  uint32_t arity = 0;
  std::vector<Value> key;  // the call pattern
  std::vector<Value> answers;
  size_t count = 0;
  absl::flat_hash_set<std::vector<Value>> seen;
  uint64_t epoch = 0;  // iteration in which it was last evaluated
  uint32_t level = 0;  // fixpoint nesting level that evaluated it
  bool evaluating = false;
  bool complete = false;
};

struct Evaluator::Scratch {
  std::vector<Slot> slots;
  uint32_t top = 0;
  std::vector<std::pair<uint32_t, Slot>> trail;
  struct Active {
    uint32_t pred;
    const Value* in;
  };
  std::vector<Active> active;
  std::vector<Value> solution;
  // Tabled mode.
  std::vector<std::unique_ptr<Table>> tables;
  absl::flat_hash_map<std::vector<Value>, uint32_t> table_index;
  std::vector<Value> key;
  std::vector<uint32_t> touched;
  uint64_t epoch_counter = 0;
  uint64_t answers_added = 0;
};

thread_local std::vector<std::unique_ptr<Evaluator::Scratch>> Evaluator::pool_;

Evaluator::Scratch* Evaluator::AcquireScratch() {
  if (pool_.empty()) {
    auto s = std::make_unique<Scratch>();
    s->slots.resize(1024);
    s->trail.reserve(256);
    s->active.reserve(64);
    return s.release();
  }
  Scratch* s = pool_.back().release();
  pool_.pop_back();
  return s;
}

void Evaluator::ReleaseScratch(Scratch* s) {
  if (!s->tables.empty()) {
    s->tables.clear();
    s->table_index.clear();
  }
  s->touched.clear();
  // Keep the buffers of a normal request; drop what a pathological one inflated.
  if (s->slots.size() > (1u << 16)) {
    s->slots.resize(1024);
    s->slots.shrink_to_fit();
  }
  if (s->trail.capacity() > (1u << 16)) s->trail = {};
  if (pool_.size() < 4) {
    pool_.emplace_back(s);
  } else {
    delete s;
  }
}

// ---- Evaluator: setup and entry points ----------------------------------------------------------

Evaluator::Evaluator(const Program& program, const facts::RelationView* views, const RequestContext& request)
    : prog_(program), views_(views), req_(request), s_(AcquireScratch()) {}

Evaluator::~Evaluator() { ReleaseScratch(s_); }

void Evaluator::Reset(bool tabled) {
  result_ = {};
  need_tabling_ = false;
  tabled_ = tabled;
  steps_ = 0;
  step_limit_ = tabled ? req_.limits.max_steps : std::min<uint64_t>(req_.limits.max_steps, kFastStepBudget);
  depth_ = 0;
  epoch_ = 0;
  level_ = 0;
  s_->top = 0;
  s_->trail.clear();
  s_->active.clear();
  if (!s_->tables.empty()) {
    s_->tables.clear();
    s_->table_index.clear();
  }
  s_->touched.clear();
  s_->answers_added = 0;
}

template <typename Body>
Evaluator::Result Evaluator::Run(Body&& body, absl::FunctionRef<void()> restart) {
  stack_base_ = StackPosition();  // measured here: every body below runs in deeper frames
  Reset(false);
  body();
  total_steps_ += steps_;
  if (need_tabling_) {
    restart();
    Reset(true);
    used_tabling_ = true;
    bool stopped = false;
    Fixpoint(body, restart, &stopped);
    total_steps_ += steps_;
  }
  return std::move(result_);
}

bool Evaluator::Fixpoint(absl::FunctionRef<bool()> body, absl::FunctionRef<void()> on_iteration, bool* stopped) {
  ++level_;
  const uint64_t saved_epoch = epoch_;
  const size_t first = s_->touched.size();
  *stopped = false;
  for (;;) {
    epoch_ = ++s_->epoch_counter;
    const uint64_t before = s_->answers_added;
    on_iteration();
    const bool more = body();
    if (aborted()) break;
    if (!more) {
      *stopped = true;
      break;
    }
    if (s_->answers_added == before) {
      // Nothing grew: every table evaluated in this last iteration saw final inputs.
      for (size_t i = first; i < s_->touched.size(); ++i) {
        Table& t = *s_->tables[s_->touched[i]];
        if (t.level == level_ && t.epoch == epoch_) t.complete = true;
      }
      break;
    }
  }
  s_->touched.resize(first);
  epoch_ = saved_epoch;
  --level_;
  return !aborted();
}

Evaluator::Result Evaluator::SolveCall(uint32_t pred, const Value* in, CallSink& sink) {
  return Run([&]() -> bool { return Solve(pred, in, [&](const Value* a) { return sink.Answer(a); }); },
             [&] { sink.Restart(); });
}

Evaluator::Result Evaluator::SolveClause(const Clause& c, const Value* in, size_t prefix, SlotSink& sink) {
  return Run(
      [&]() -> bool {
        uint32_t frame = 0;
        if (!EnterClause(c, in, &frame)) {
          FreeFrame(frame);
          return true;
        }
        uint32_t mask = 0;
        for (uint32_t i = 0; in != nullptr && i < c.head.size(); ++i) {
          if (in[i].valid()) mask |= 1u << i;
        }
        const std::vector<Literal>& plan = c.PlanFor(mask);
        const bool r = RunBody(plan.data(), std::min(prefix, plan.size()), 0, frame, [&]() -> bool {
          s_->solution.resize(c.num_slots);
          for (uint32_t i = 0; i < c.num_slots; ++i) s_->solution[i] = s_->slots[Deref(frame + i)].v;
          return sink.Solution(s_->solution.data());
        });
        FreeFrame(frame);
        return r;
      },
      [&] { sink.Restart(); });
}

Evaluator::Result Evaluator::Holds(uint32_t pred, const Value* in, bool* holds) {
  struct Sink : CallSink {
    bool found = false;
    bool Answer(const Value*) override {
      found = true;
      return false;
    }
    void Restart() override { found = false; }
  } sink;
  Result r = SolveCall(pred, in, sink);
  *holds = sink.found;
  return r;
}

Evaluator::FactSource Evaluator::FindFact(uint32_t pred, const Value* tuple) const {
  if (views_[pred].Contains(tuple) && views_[pred].Live(tuple, req_.now)) return FactSource::kStored;
  if (prog_.policy_view(pred).base != nullptr && prog_.policy_view(pred).Contains(tuple)) return FactSource::kPolicy;
  const std::vector<RequestContext::ContextFact>& context = req_.ContextFacts();
  if (context.empty()) return FactSource::kNone;
  const uint32_t n = prog_.pred(pred).key.arity;
  for (const RequestContext::ContextFact& cf : context) {
    if (cf.pred == pred && std::equal(tuple, tuple + n, req_.ContextRow(cf))) {
      return FactSource::kContext;
    }
  }
  return FactSource::kNone;
}

Evaluator::FactSource Evaluator::MatchFact(uint32_t pred, const Value* pattern, Value* row_out) const {
  const uint32_t n = prog_.pred(pred).key.arity;
  auto fits = [&](const Value* row) {
    for (uint32_t i = 0; i < n; ++i) {
      if (pattern[i].valid() ? pattern[i] != row[i] : !prog_.IsSubtype(row[i].type, ConstraintOf(pattern[i]))) {
        return false;
      }
    }
    std::copy_n(row, n, row_out);
    return true;
  };
  auto first = [&](const facts::RelationView& view) {
    bool found = false;
    view.ForEach(pattern, [&](const Value* row) { return !(found = view.Live(row, req_.now) && fits(row)); });
    return found;
  };
  if (first(views_[pred])) return FactSource::kStored;
  if (first(prog_.policy_view(pred))) return FactSource::kPolicy;
  for (const RequestContext::ContextFact& cf : req_.ContextFacts()) {
    if (cf.pred == pred && fits(req_.ContextRow(cf))) return FactSource::kContext;
  }
  return FactSource::kNone;
}

// ---- Evaluator: slots ------------------------------------------------------------------

uint32_t Evaluator::AllocFrame(const Clause& c) {
  const uint32_t frame = s_->top;
  s_->top += c.num_slots;
  if (s_->slots.size() < s_->top) s_->slots.resize(std::max<size_t>(s_->top, s_->slots.size() * 2));
  for (uint32_t i = 0; i < c.num_slots; ++i) s_->slots[frame + i] = Slot{Unbound(c.slot_types[i]), 0};
  return frame;
}

void Evaluator::FreeFrame(uint32_t frame) { s_->top = frame; }

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t Evaluator::Deref(uint32_t s) const {
  while (s_->slots[s].alias != 0) s = s_->slots[s].alias - 1;
  return s;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline Value Evaluator::ArgValue(const Arg& a, uint32_t frame) const {
  switch (a.kind) {
    case Arg::Kind::kConst:
      return a.value;
    case Arg::Kind::kSlot:
      return s_->slots[Deref(frame + a.slot)].v;
    case Arg::Kind::kNow:
      return Value::Integer(req_.now);
    case Arg::Kind::kAnon:
      break;
  }
  return Unbound();
}

Value Evaluator::HeadAnswer(const Arg& h, const Value& in, uint32_t frame) const {
  switch (h.kind) {
    case Arg::Kind::kConst:
      return h.value;
    case Arg::Kind::kNow:
      return Value::Integer(req_.now);
    case Arg::Kind::kSlot:
      return s_->slots[Deref(frame + h.slot)].v;
    case Arg::Kind::kAnon:
      break;
  }
  return Unbound(prog_.Meet(ConstraintOf(in), h.type).value_or(h.type));
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Evaluator::Trail(uint32_t s) { s_->trail.emplace_back(s, s_->slots[s]); }

void Evaluator::Undo(size_t mark) {
  while (s_->trail.size() > mark) {
    s_->slots[s_->trail.back().first] = s_->trail.back().second;
    s_->trail.pop_back();
  }
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool Evaluator::BindSlot(uint32_t s, const Value& v, bool trail) {
  const Value cur = s_->slots[s].v;
  if (cur.valid()) return v.valid() ? cur == v : prog_.IsSubtype(cur.type, ConstraintOf(v));
  if (v.valid()) {
    if (!prog_.IsSubtype(v.type, ConstraintOf(cur))) return false;
    if (trail) Trail(s);
    s_->slots[s].v = v;
    return true;
  }
  std::optional<SymbolId> m = prog_.Meet(ConstraintOf(cur), ConstraintOf(v));
  if (!m) return false;
  if (*m != ConstraintOf(cur)) {
    if (trail) Trail(s);
    s_->slots[s].v = Unbound(*m);
  }
  return true;
}

// ---- Evaluator: resolution ---------------------------------------------------------------------

bool Evaluator::Fail(Result::Code code, std::string message) {
  if (code == Result::Code::kStepLimit && !tabled_ && step_limit_ < req_.limits.max_steps) {
    need_tabling_ = true;  // the SLD attempt was too expensive; tabling bounds the work
    return false;
  }
  if (result_.code == Result::Code::kOk) result_ = {code, std::move(message)};
  return false;
}

bool Evaluator::Solve(uint32_t p, const Value* in, AnswerFn k) {
  if (++steps_ > step_limit_) {
    return Fail(Result::Code::kStepLimit,
                absl::StrCat("evaluation step limit (", req_.limits.max_steps, ") exceeded"));
  }
  const Predicate& pred = prog_.pred(p);
  const uint32_t n = pred.key.arity;
  const uint32_t mask = BoundMask(in, n);
  const std::vector<uint32_t>& clauses = prog_.Candidates(p, in);
  // No rule applies (e.g. has_role with a role no shorthand defines): facts only, and no recursion.
  if (clauses.empty()) return SolveFacts(p, in, mask, k);
  if (pred.recursive) {
    if (tabled_) return SolveTabled(p, in, k);
    for (const Scratch::Active& a : s_->active) {
      if (a.pred == p && std::equal(in, in + n, a.in)) {
        need_tabling_ = true;  // a variant of a call in progress: SLD could loop
        return false;
      }
    }
  }
  if (depth_ >= req_.limits.max_depth) {
    return Fail(Result::Code::kDepthLimit,
                absl::StrCat("evaluation depth limit (", req_.limits.max_depth, ") exceeded"));
  }
  ++depth_;
  if (pred.recursive) s_->active.push_back({p, in});
  const bool r = SolveFacts(p, in, mask, k) && SolveClauses(p, clauses, in, mask, k);
  if (pred.recursive) s_->active.pop_back();
  --depth_;
  return r;
}

bool Evaluator::SolveDirect(uint32_t p, const Value* in, uint32_t mask, AnswerFn k) {
  return SolveFacts(p, in, mask, k) && SolveClauses(p, prog_.Candidates(p, in), in, mask, k);
}

bool Evaluator::SolveFacts(uint32_t p, const Value* in, uint32_t mask, AnswerFn k) {
  const uint32_t n = prog_.pred(p).key.arity;
  if (mask == (1u << n) - 1) {
    if (FindFact(p, in) == FactSource::kNone) return true;
    if (++steps_ > step_limit_) {
      return Fail(Result::Code::kStepLimit,
                  absl::StrCat("evaluation step limit (", req_.limits.max_steps, ") exceeded"));
    }
    return k(in);
  }
  bool typed = false;
  for (uint32_t i = 0; i < n; ++i) typed |= !in[i].valid() && ConstraintOf(in[i]) != kNoSymbol;
  auto emit = [&](const Value* row) -> bool {
    if (typed) {
      for (uint32_t i = 0; i < n; ++i) {
        if (!in[i].valid() && !prog_.IsSubtype(row[i].type, ConstraintOf(in[i]))) return true;
      }
    }
    if (++steps_ > step_limit_) {
      return Fail(Result::Code::kStepLimit,
                  absl::StrCat("evaluation step limit (", req_.limits.max_steps, ") exceeded"));
    }
    return k(row);
  };
  const facts::RelationView& stored = views_[p];
  if (stored.expiry == nullptr) {
    if (!stored.ForEach(in, emit)) return false;
  } else if (!stored.ForEach(in, [&](const Value* row) { return !stored.Live(row, req_.now) || emit(row); })) {
    return false;
  }
  if (!prog_.policy_view(p).ForEach(in, emit)) return false;
  for (const RequestContext::ContextFact& cf : req_.ContextFacts()) {
    if (cf.pred != p) continue;
    const Value* row = req_.ContextRow(cf);
    bool match = true;
    for (uint32_t i = 0; i < n && match; ++i) match = !in[i].valid() || in[i] == row[i];
    if (match && !emit(row)) return false;
  }
  return true;
}

bool Evaluator::SolveClauses(uint32_t p, const std::vector<uint32_t>& clauses, const Value* in, uint32_t mask,
                             AnswerFn k) {
  const uint32_t n = prog_.pred(p).key.arity;
  for (uint32_t ci : clauses) {
    const Clause& c = prog_.clause(ci);
    if (++steps_ > step_limit_) {
      return Fail(Result::Code::kStepLimit,
                  absl::StrCat("evaluation step limit (", req_.limits.max_steps, ") exceeded"));
    }
    uint32_t frame;
    if (!EnterClause(c, in, &frame)) {
      FreeFrame(frame);
      continue;
    }
    const std::vector<Literal>& plan = c.PlanFor(mask);
    const bool r = RunBody(plan.data(), plan.size(), 0, frame, [&]() -> bool {
      ArgBuffer ans;
      for (uint32_t i = 0; i < n; ++i) ans[i] = in[i].valid() ? in[i] : HeadAnswer(c.head[i], in[i], frame);
      return k(ans.data());
    });
    FreeFrame(frame);
    if (!r) return false;
  }
  return true;
}

void Evaluator::AddAnswer(Table& t, const Value* answer) {
  std::vector<Value> a(answer, answer + t.arity);
  if (!t.seen.insert(a).second) return;
  t.answers.insert(t.answers.end(), answer, answer + t.arity);
  ++t.count;
  ++s_->answers_added;
}

bool Evaluator::SolveTabled(uint32_t p, const Value* in, AnswerFn k) {
  const uint32_t n = prog_.pred(p).key.arity;
  s_->key.assign(1, Value{kNoSymbol, p});
  s_->key.insert(s_->key.end(), in, in + n);
  uint32_t id;
  auto it = s_->table_index.find(s_->key);
  if (it != s_->table_index.end()) {
    id = it->second;
  } else {
    id = static_cast<uint32_t>(s_->tables.size());
    auto t = std::make_unique<Table>();
    t->pred = p;
    t->arity = n;
    t->key.assign(in, in + n);
    s_->tables.push_back(std::move(t));
    s_->table_index.emplace(s_->key, id);
  }
  Table& t = *s_->tables[id];
  if (!t.complete) {
    if (t.evaluating) {
      if (t.level != level_) {
        return Fail(Result::Code::kError,
                    absl::StrCat("internal error: ", prog_.pred(p).name, " is evaluated through `not` recursively"));
      }
    } else if (t.epoch != epoch_) {
      if (depth_ >= req_.limits.max_depth) {
        return Fail(Result::Code::kDepthLimit,
                    absl::StrCat("evaluation depth limit (", req_.limits.max_depth, ") exceeded"));
      }
      t.evaluating = true;
      t.epoch = epoch_;
      t.level = level_;
      s_->touched.push_back(id);
      ++depth_;
      const bool ok = SolveDirect(p, t.key.data(), BoundMask(t.key.data(), n), [&](const Value* ans) {
        AddAnswer(t, ans);
        return true;
      });
      --depth_;
      t.evaluating = false;
      if (!ok) return false;
    }
  }
  // Answers may be added while we deliver (recursive reads); copy each before handing it out.
  ArgBuffer buf;
  for (size_t i = 0; i < t.count; ++i) {
    std::copy_n(t.answers.data() + i * n, n, buf.data());
    if (!k(buf.data())) return false;
  }
  return true;
}

bool Evaluator::Unify(uint32_t s, uint32_t t) {
  if (s == t) return true;
  const Value vt = s_->slots[t].v;
  if (vt.valid()) return BindSlot(s, vt, true);
  if (!BindSlot(s, vt, true)) return false;  // s bound: type check; s unbound: meet the constraints
  if (s_->slots[s].v.valid()) return BindSlot(t, s_->slots[s].v, true);
  Trail(t);
  s_->slots[t].alias = s + 1;
  return true;
}

bool Evaluator::EnterClause(const Clause& c, const Value* in, uint32_t* frame) {
  *frame = AllocFrame(c);
  if (in == nullptr) return true;
  for (size_t i = 0; i < c.head.size(); ++i) {
    const Arg& h = c.head[i];
    const Value& v = in[i];
    switch (h.kind) {
      case Arg::Kind::kConst:
      case Arg::Kind::kNow: {
        const Value hv = h.kind == Arg::Kind::kConst ? h.value : Value::Integer(req_.now);
        if (v.valid() ? v != hv : !prog_.IsSubtype(hv.type, ConstraintOf(v))) return false;
        break;
      }
      case Arg::Kind::kAnon:
        if (v.valid() ? !prog_.IsSubtype(v.type, h.type) : !prog_.Meet(ConstraintOf(v), h.type)) return false;
        break;
      case Arg::Kind::kSlot: {
        const uint32_t s = Deref(*frame + h.slot);
        if (v.valid()) {
          if (!prog_.IsSubtype(v.type, h.type) || !BindSlot(s, v, false)) return false;
        } else {
          std::optional<SymbolId> m = prog_.Meet(ConstraintOf(v), h.type);
          if (!m || !BindSlot(s, Unbound(*m), false)) return false;
        }
        break;
      }
    }
  }
  return true;
}

bool Evaluator::Compare(polar::CmpOp op, const Value& a, const Value& b) const {
  int cmp;
  if (a.is_integer() && b.is_integer()) {
    cmp = a.integer() < b.integer() ? -1 : (a.integer() > b.integer() ? 1 : 0);
  } else if (a.is_string() && b.is_string()) {
    if (a == b) {
      cmp = 0;
    } else {
      std::string_view x = NameOf(a.symbol(), req_.symbols), y = NameOf(b.symbol(), req_.symbols);
      cmp = x < y ? -1 : (x > y ? 1 : 0);
    }
  } else {
    // Different kinds: only (in)equality is meaningful.
    if (op == polar::CmpOp::kEq) return a == b;
    if (op == polar::CmpOp::kNe) return a != b;
    return false;
  }
  switch (op) {
    case polar::CmpOp::kEq:
      return cmp == 0;
    case polar::CmpOp::kNe:
      return cmp != 0;
    case polar::CmpOp::kLt:
      return cmp < 0;
    case polar::CmpOp::kLe:
      return cmp <= 0;
    case polar::CmpOp::kGt:
      return cmp > 0;
    case polar::CmpOp::kGe:
      return cmp >= 0;
  }
  return false;
}

bool Evaluator::RunNot(const Literal& l, uint32_t frame, bool* found) {
  const size_t mark = s_->trail.size();
  auto body = [&]() -> bool {
    const bool r = RunBody(l.body.data(), l.body.size(), 0, frame, [&] {
      *found = true;
      return false;
    });
    Undo(mark);
    return r;
  };
  *found = false;
  if (!tabled_) {
    body();
    return !aborted();
  }
  // Tabled: the negated goal must be complete before its absence means anything.
  bool stopped = false;
  return Fixpoint(body, [&] { *found = false; }, &stopped);
}

bool Evaluator::RunBody(const Literal* lits, size_t n, size_t i, uint32_t frame, DoneFn done) {
  if (i == n) return done();
  // The stack grows down. Reset() may run in a deeper frame than the body that follows, so a
  // position above the base counts as no use rather than wrapping around.
  const uintptr_t pos = StackPosition();
  if (pos < stack_base_ && stack_base_ - pos > kStackBudget) {
    return Fail(Result::Code::kDepthLimit, "evaluation nesting limit exceeded (rule bodies nest too deeply)");
  }
  return RunLiteral(lits, n, i, frame, done);
}

bool Evaluator::RunLiteral(const Literal* lits, size_t n, size_t i, uint32_t frame, DoneFn done) {
  const Literal& l = lits[i];
  switch (l.kind) {
    case Literal::Kind::kCall: {
      const size_t arity = l.args.size();
      ArgBuffer in;
      for (size_t a = 0; a < arity; ++a) in[a] = ArgValue(l.args[a], frame);
      return Solve(l.pred, in.data(), [&](const Value* ans) -> bool {
        const size_t mark = s_->trail.size();
        for (size_t a = 0; a < arity; ++a) {
          if (l.args[a].kind == Arg::Kind::kSlot && !in[a].valid() &&
              !BindSlot(Deref(frame + l.args[a].slot), ans[a], true)) {
            Undo(mark);
            return true;
          }
        }
        const bool r = RunBody(lits, n, i + 1, frame, done);
        Undo(mark);
        return r;
      });
    }
    case Literal::Kind::kCompare: {
      const Value a = ArgValue(l.args[0], frame), b = ArgValue(l.args[1], frame);
      if (a.valid() && b.valid()) return Compare(l.op, a, b) ? RunBody(lits, n, i + 1, frame, done) : true;
      if (l.op != polar::CmpOp::kEq) {
        return Fail(Result::Code::kError,
                    absl::StrCat("comparison at ", polar::FormatSpan(l.span, prog_.policy().sources),
                                 " has an unbound operand"));
      }
      const size_t mark = s_->trail.size();
      const Arg& x = l.args[0];
      const Arg& y = l.args[1];
      bool ok = true;
      if (x.kind == Arg::Kind::kSlot && y.kind == Arg::Kind::kSlot) {
        ok = Unify(Deref(frame + x.slot), Deref(frame + y.slot));
      } else if (x.kind == Arg::Kind::kSlot && b.valid()) {
        ok = BindSlot(Deref(frame + x.slot), b, true);
      } else if (y.kind == Arg::Kind::kSlot && a.valid()) {
        ok = BindSlot(Deref(frame + y.slot), a, true);
      }  // `_` on either side unifies with anything
      const bool r = ok ? RunBody(lits, n, i + 1, frame, done) : true;
      Undo(mark);
      return r;
    }
    case Literal::Kind::kMatches: {
      const Value a = ArgValue(l.args[0], frame);
      if (a.valid()) return prog_.IsSubtype(a.type, l.type) ? RunBody(lits, n, i + 1, frame, done) : true;
      if (l.args[0].kind != Arg::Kind::kSlot) return RunBody(lits, n, i + 1, frame, done);
      const size_t mark = s_->trail.size();
      const bool ok = BindSlot(Deref(frame + l.args[0].slot), Unbound(l.type), true);
      const bool r = ok ? RunBody(lits, n, i + 1, frame, done) : true;
      Undo(mark);
      return r;
    }
    case Literal::Kind::kNot: {
      bool found = false;
      if (!RunNot(l, frame, &found)) return false;
      return found ? true : RunBody(lits, n, i + 1, frame, done);
    }
    case Literal::Kind::kTimeWithin: {
      const polar::TimeWindow* window = l.window.get();
      polar::TimeWindow parsed;
      if (window == nullptr) {
        // Arguments from facts: a bad zone, day list or time is an error, and errors deny.
        std::string_view text[4];
        for (size_t a = 0; a < 4; ++a) {
          const Value v = ArgValue(l.args[a], frame);
          if (!v.is_string()) {
            return Fail(Result::Code::kError,
                        absl::StrCat("time_within at ", polar::FormatSpan(l.span, prog_.policy().sources), ": argument ",
                                     a + 1, v.valid() ? " is not a String" : " is unbound"));
          }
          text[a] = NameOf(v.symbol(), req_.symbols);
        }
        absl::StatusOr<polar::TimeWindow> w = polar::ParseTimeWindow(text[0], text[1], text[2], text[3]);
        if (!w.ok()) {
          return Fail(Result::Code::kError, absl::StrCat("time_within at ", polar::FormatSpan(l.span, prog_.policy().sources),
                                                         ": ", w.status().message()));
        }
        parsed = *std::move(w);
        window = &parsed;
      }
      return window->Contains(req_.now) ? RunBody(lits, n, i + 1, frame, done) : true;
    }
    case Literal::Kind::kMember: {
      const Value a = ArgValue(l.args[0], frame);
      if (a.valid()) {
        const bool in = std::find(l.members.begin(), l.members.end(), a) != l.members.end();
        return in ? RunBody(lits, n, i + 1, frame, done) : true;
      }
      if (l.args[0].kind != Arg::Kind::kSlot) return RunBody(lits, n, i + 1, frame, done);
      for (const Value& m : l.members) {
        const size_t mark = s_->trail.size();
        const bool ok = BindSlot(Deref(frame + l.args[0].slot), m, true);
        const bool r = ok ? RunBody(lits, n, i + 1, frame, done) : true;
        Undo(mark);
        if (!r) return false;
      }
      return true;
    }
  }
  return true;
}

}  // namespace mandate::engine
