// Seed 001, "Worker Pools", its example: a Pool of 5 workers maps
// process_url over 10 URLs. Each call takes 2 s, so with five workers the
// map takes about 4 s: two rounds of five, as the seed's explanation says
// ("Timing"). The results come back in the order of the URLs, whatever the
// order the workers ran them in.
//
// Not in the seed: the program prints how long the map took, rounded to
// whole seconds, to show the "about 4 seconds" of the explanation.

#include <chrono>
#include <cmath>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

// Dummy function to simulate processing a URL
std::string process_url(const std::string& url) {
  std::cout << "Processing " + url + "..." << std::endl;  // one write: lines from workers stay whole
  std::this_thread::sleep_for(std::chrono::seconds(2));  // Simulate time taken to process the URL
  return "Content of " + url;
}

void run() {
  // List of dummy URLs
  std::vector<std::string> urls;
  for (int i = 0; i < 10; ++i) urls.push_back("http://example.com/page" + std::to_string(i));

  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> results;
  {
    // Create a Pool with 5 workers
    mproc::Pool pool(5);
    // Map the function 'process_url' to the URLs
    results = pool.map(process_url, urls);
  }  // Python's `with` exit: the workers are stopped
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;

  // Print the results
  for (const auto& result : results) std::cout << result << '\n';
  std::cout << "Took about " << std::lround(took.count()) << " s" << std::endl;
}

int main() { run(); }
