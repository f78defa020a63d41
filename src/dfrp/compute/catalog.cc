#include "dfrp/compute/catalog.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>

#include "dfrp/compute/job.h"

namespace dfrp::compute {

using core::Err;
using core::Result;
using core::Status;

namespace {

bool NameOk(std::string_view a) {
  if (a.empty() || a.size() > kMaxAppName || a[0] == '.' || a[0] == '-') return false;
  return std::all_of(a.begin(), a.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

ArgSpec Uint(std::string name, uint64_t lo, uint64_t hi, bool optional = false) {
  ArgSpec a;
  a.name = std::move(name);
  a.type = "uint";
  a.min = lo;
  a.max = hi;
  a.optional = optional;
  return a;
}

std::vector<AppSpec> ReferenceApps(const std::string& dir) {
  std::vector<AppSpec> out;
  AppSpec m;
  m.name = "matmul";
  m.path = dir + "/dfrp-app-matmul";
  m.description =
      "C = A·B for two N×N integer matrices from SEED; row blocks, B passed round a ring "
      "(MPI_Sendrecv); rank r writes its rows of C as little-endian int64";
  m.deterministic = true;
  m.reference = true;
  m.args = {Uint("N", 1, 8192), Uint("SEED", 0, UINT64_MAX)};
  out.push_back(m);
  AppSpec p;
  p.name = "montecarlo";
  p.path = dir + "/dfrp-app-montecarlo";
  p.description =
      "a seeded Monte Carlo estimate of pi; hit counts summed with MPI_Allreduce; the total is "
      "the same for any rank count";
  p.deterministic = true;
  p.reference = true;
  p.args = {Uint("SAMPLES", 1, 1000000000000ULL), Uint("SEED", 0, UINT64_MAX)};
  out.push_back(p);
  AppSpec k;
  k.name = "knn";
  k.path = dir + "/dfrp-app-knn";
  k.description =
      "k nearest neighbours of QUERIES generated points among N byte vectors (generated, or an "
      "input shard of N·DIM bytes); local top K gathered to rank 0 and merged";
  k.deterministic = true;
  k.reference = true;
  ArgSpec data;
  data.name = "DATA";
  data.type = "input";
  data.optional = true;
  k.args = {Uint("N", 1, 100000000),  Uint("DIM", 1, 4096),        Uint("K", 1, 1024),
            Uint("QUERIES", 1, 4096), Uint("SEED", 0, UINT64_MAX), data};
  out.push_back(k);
  return out;
}

Status Bad(std::string_view source, std::string_view app, std::string_view what) {
  return Status::InvalidArgument(fmt::format("{}: app '{}': {}", source, app, what));
}

}  // namespace

Result<std::vector<AppSpec>> ParseCatalog(std::string_view text, std::string_view source) {
  toml::table doc;
  try {
    doc = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return Err(Status::InvalidArgument(fmt::format("{}:{}:{}: not valid TOML: {}", source,
                                                   e.source().begin.line, e.source().begin.column,
                                                   e.description())));
  }
  for (const auto& [key, node] : doc)
    if (key.str() != "app")
      return Err(Status::InvalidArgument(
          fmt::format("{}: unknown key '{}' (a catalog holds [[app]] tables)", source, key.str())));
  std::vector<AppSpec> out;
  const toml::node* apps = doc.get("app");
  if (apps == nullptr) return out;
  const toml::array* arr = apps->as_array();
  if (arr == nullptr)
    return Err(Status::InvalidArgument(fmt::format("{}: 'app' must be [[app]] tables", source)));
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::table* t = (*arr)[i].as_table();
    if (t == nullptr)
      return Err(Status::InvalidArgument(fmt::format("{}: app {} is not a table", source, i)));
    AppSpec a;
    const std::string label = fmt::format("#{}", i + 1);
    auto str = [&](std::string_view key, std::string* dst, bool required) -> Status {
      const toml::node* n = t->get(key);
      if (n == nullptr)
        return required ? Bad(source, a.name.empty() ? label : a.name,
                              fmt::format("'{}' is missing", key))
                        : Status::OK();
      if (!n->is_string())
        return Bad(source, a.name.empty() ? label : a.name,
                   fmt::format("'{}' is not a string", key));
      *dst = n->as_string()->get();
      return Status::OK();
    };
    auto flag = [&](std::string_view key, bool* dst) -> Status {
      const toml::node* n = t->get(key);
      if (n == nullptr) return Status::OK();
      if (!n->is_boolean())
        return Bad(source, a.name, fmt::format("'{}' is not true or false", key));
      *dst = n->as_boolean()->get();
      return Status::OK();
    };
    DFRP_RETURN_IF_ERROR(str("name", &a.name, true));
    if (!NameOk(a.name))
      return Err(Bad(source, a.name.substr(0, 80), "the name is not 1..64 bytes of [a-z0-9._-]"));
    DFRP_RETURN_IF_ERROR(str("path", &a.path, true));
    if (a.path.empty() || a.path[0] != '/')
      return Err(Bad(source, a.name, "'path' is not absolute"));
    DFRP_RETURN_IF_ERROR(str("description", &a.description, false));
    DFRP_RETURN_IF_ERROR(flag("deterministic", &a.deterministic));
    DFRP_RETURN_IF_ERROR(flag("rank_independent", &a.rank_independent));
    for (const auto& [key, node] : *t) {
      const std::string_view k = key.str();
      if (k != "name" && k != "path" && k != "description" && k != "deterministic" &&
          k != "rank_independent" && k != "args")
        return Err(Bad(source, a.name, fmt::format("unknown key '{}'", k)));
    }
    if (const toml::node* an = t->get("args")) {
      const toml::array* args = an->as_array();
      if (args == nullptr) return Err(Bad(source, a.name, "'args' is not an array of tables"));
      if (args->size() > kMaxArgs)
        return Err(Bad(source, a.name, fmt::format("more than {} arguments", kMaxArgs)));
      for (size_t j = 0; j < args->size(); ++j) {
        const toml::table* at = (*args)[j].as_table();
        if (at == nullptr)
          return Err(Bad(source, a.name, fmt::format("argument {} is not a table", j + 1)));
        ArgSpec s;
        const toml::node* nn = at->get("name");
        const toml::node* tn = at->get("type");
        if (nn == nullptr || !nn->is_string() || tn == nullptr || !tn->is_string())
          return Err(
              Bad(source, a.name, fmt::format("argument {} needs a name and a type", j + 1)));
        s.name = nn->as_string()->get();
        s.type = tn->as_string()->get();
        if (s.type != "uint" && s.type != "enum" && s.type != "input")
          return Err(Bad(source, a.name,
                         fmt::format("argument {}: type '{}' is not uint, enum or input", s.name,
                                     s.type.substr(0, 32))));
        for (const auto& [ak, av] : *at) {
          const std::string_view k = ak.str();
          if (k != "name" && k != "type" && k != "min" && k != "max" && k != "values" &&
              k != "optional")
            return Err(
                Bad(source, a.name, fmt::format("argument {}: unknown key '{}'", s.name, k)));
        }
        for (auto [key, dst] : {std::pair{"min", &s.min}, std::pair{"max", &s.max}}) {
          if (const toml::node* v = at->get(key)) {
            if (!v->is_integer() || v->as_integer()->get() < 0)
              return Err(
                  Bad(source, a.name,
                      fmt::format("argument {}: '{}' is not a whole number >= 0", s.name, key)));
            *dst = static_cast<uint64_t>(v->as_integer()->get());
          }
        }
        if (s.min > s.max)
          return Err(Bad(source, a.name, fmt::format("argument {}: min is over max", s.name)));
        if (const toml::node* v = at->get("optional")) {
          if (!v->is_boolean())
            return Err(Bad(source, a.name,
                           fmt::format("argument {}: 'optional' is not true or false", s.name)));
          s.optional = v->as_boolean()->get();
        }
        if (s.type == "enum") {
          const toml::node* vn = at->get("values");
          const toml::array* va = vn != nullptr ? vn->as_array() : nullptr;
          if (va == nullptr || va->empty())
            return Err(
                Bad(source, a.name, fmt::format("argument {}: an enum needs values", s.name)));
          for (const auto& e : *va) {
            if (!e.is_string())
              return Err(
                  Bad(source, a.name, fmt::format("argument {}: a value is not a string", s.name)));
            s.values.push_back(e.as_string()->get());
          }
        }
        if (!s.optional && !a.args.empty() && a.args.back().optional)
          return Err(
              Bad(source, a.name,
                  fmt::format("argument {} is required but follows an optional one", s.name)));
        a.args.push_back(std::move(s));
      }
    }
    if (FindApp(out, a.name) != nullptr) return Err(Bad(source, a.name, "listed twice"));
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<AppSpec>> LoadCatalog(core::FileSystem& fs, const std::string& catalog_path,
                                         const std::string& libexec_dir) {
  std::vector<AppSpec> out = ReferenceApps(libexec_dir);
  if (catalog_path.empty()) return out;
  DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(&fs, catalog_path));
  DFRP_ASSIGN_OR_RETURN(auto own, ParseCatalog(text, catalog_path));
  for (auto& a : own) {
    if (FindApp(out, a.name) != nullptr)
      return Err(Bad(catalog_path, a.name, "the name of a reference app; choose another"));
    out.push_back(std::move(a));
  }
  return out;
}

AppSpec ClientBinaryApp() {
  AppSpec c;
  c.name = "client";
  c.description =
      "the client's own program (input BINARY), in bubblewrap: no network, read-only system";
  c.client_binary = true;
  ArgSpec binary;
  binary.name = "BINARY";
  binary.type = "input";
  c.args = {binary};
  for (const char* n : {"A", "B", "C", "D"}) c.args.push_back(Uint(n, 0, UINT64_MAX, true));
  return c;
}

const AppSpec* FindApp(const std::vector<AppSpec>& apps, std::string_view name) {
  for (const auto& a : apps)
    if (a.name == name) return &a;
  return nullptr;
}

Status CheckArgs(const AppSpec& app, const std::vector<std::string>& args, size_t inputs) {
  size_t required = 0;
  for (const auto& s : app.args)
    if (!s.optional) ++required;
  if (args.size() < required || args.size() > app.args.size())
    return Status::InvalidArgument(fmt::format(
        "app {} takes {} arguments ({}); got {}", app.name,
        required == app.args.size() ? std::to_string(required)
                                    : fmt::format("{} to {}", required, app.args.size()),
        ArgsSynopsis(app), args.size()));
  for (size_t i = 0; i < args.size(); ++i) {
    const ArgSpec& s = app.args[i];
    const std::string& v = args[i];
    if (s.type == "enum") {
      if (std::find(s.values.begin(), s.values.end(), v) == s.values.end())
        return Status::InvalidArgument(fmt::format("app {}: {} = '{}' is not one of {}", app.name,
                                                   s.name, v.substr(0, 64),
                                                   fmt::join(s.values, ", ")));
      continue;
    }
    uint64_t n = 0;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size())
      return Status::InvalidArgument(fmt::format("app {}: {} = '{}' is not a whole number",
                                                 app.name, s.name, v.substr(0, 64)));
    if (s.type == "uint" && (n < s.min || n > s.max))
      return Status::InvalidArgument(
          fmt::format("app {}: {} = {} is outside {}..{}", app.name, s.name, n, s.min, s.max));
    if (s.type == "input" && n >= inputs)
      return Status::InvalidArgument(
          fmt::format("app {}: {} = {} names input {}, but the job has {} inputs", app.name, s.name,
                      n, n, inputs));
  }
  return Status::OK();
}

std::string ArgsSynopsis(const AppSpec& app) {
  std::string out;
  for (const auto& s : app.args) {
    if (!out.empty()) out += ' ';
    std::string one = s.name + ":" + s.type;
    if (s.type == "uint" && (s.min != 0 || s.max != UINT64_MAX))
      one += fmt::format("[{}..{}]", s.min, s.max);
    if (s.type == "enum") one += fmt::format("{{{}}}", fmt::join(s.values, ","));
    out += s.optional ? "[" + one + "]" : one;
  }
  return out;
}

}  // namespace dfrp::compute
