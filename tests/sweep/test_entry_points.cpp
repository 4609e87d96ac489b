// The row registry of the entry-point sweep and the listing that scripts/list_entry_points.py
// compares with the public entry points (see sweep.hpp).
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "sweep/sweep.hpp"

namespace regula::sweep {
namespace {

class Invoker : public Catch::ITestInvoker {
 public:
  explicit Invoker(std::function<void()> body) : body_(std::move(body)) {}
  void invoke() const override { body_(); }

 private:
  std::function<void()> body_;
};

std::set<std::string>& entries() {
  static std::set<std::string> all;
  return all;
}

std::set<std::string>& integrations() {
  static std::set<std::string> all;
  return all;
}

// The registry keeps every AutoReg alive for the life of the program.
std::vector<std::unique_ptr<Catch::AutoReg>>& registrations() {
  static std::vector<std::unique_ptr<Catch::AutoReg>> all;
  return all;
}

}  // namespace

void add_row(std::vector<std::string> rows_entries, const std::string& what,
             std::function<void()> body, const std::string& tags) {
  std::string name = rows_entries.front();
  if (rows_entries.size() > 1) name += " +" + std::to_string(rows_entries.size() - 1);
  name += " | " + what;
  // Characters that Catch2 test specs or CMake lists would read as syntax.
  for (char& ch : name) {
    if (ch == ',' || ch == ';') ch = ':';
    if (ch == '[') ch = '(';
    if (ch == ']') ch = ')';
    if (ch == '\'' || ch == '"' || ch == '*' || ch == '\\' || ch == '~') ch = '.';
  }
  for (auto& e : rows_entries) entries().insert(e);
  registrations().push_back(std::make_unique<Catch::AutoReg>(
      new Invoker(std::move(body)), CATCH_INTERNAL_LINEINFO, Catch::StringRef(),
      Catch::NameAndTags{name, "[sweep]" + tags}));
}

void covers(const std::string& integration) { integrations().insert(integration); }

}  // namespace regula::sweep

TEST_CASE("sweep: list rows", "[.]") {
  for (const auto& e : regula::sweep::entries()) std::cout << "ROW " << e << '\n';
  for (const auto& i : regula::sweep::integrations()) std::cout << "SWEEP-COVERS " << i << '\n';
  CHECK_FALSE(regula::sweep::entries().empty());
}
