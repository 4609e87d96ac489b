// Reads golden files written by the scripts in tests/golden/: one record per line,
// "<name> <count> <v1> ... <vcount>"; lines starting with '#' are comments.
#ifndef REGULA_TESTS_SUPPORT_GOLDEN_HPP
#define REGULA_TESTS_SUPPORT_GOLDEN_HPP

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace regula::test {

class Golden {
 public:
  explicit Golden(const std::string& file) {
    const std::string path = std::string(REGULA_TEST_DATA_DIR) + "/" + file;
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open golden file " + path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream ls(line);
      std::string name;
      std::size_t n = 0;
      ls >> name >> n;
      std::vector<double> v(n);
      for (double& x : v) ls >> x;
      if (!ls) throw std::runtime_error("bad golden record " + name + " in " + path);
      data_[name] = std::move(v);
    }
  }

  [[nodiscard]] const std::vector<double>& operator[](const std::string& name) const {
    const auto it = data_.find(name);
    if (it == data_.end()) throw std::runtime_error("no golden record " + name);
    return it->second;
  }

  [[nodiscard]] bool has(const std::string& name) const { return data_.count(name) != 0; }

 private:
  std::map<std::string, std::vector<double>> data_;
};

}  // namespace regula::test

#endif
