import { expect, test } from "bun:test";
import { formatSeconds } from "../src/log.ts";

test("durations round once: never 60 seconds inside a minute", () => {
  expect(formatSeconds(239.6)).toBe("4m0s");
  expect(formatSeconds(59.6)).toBe("1m0s");
  expect(formatSeconds(12.4)).toBe("12s");
  expect(formatSeconds(3 * 3600 + 125)).toBe("3h2m");
  expect(formatSeconds(Number.POSITIVE_INFINITY)).toBe("?");
});
