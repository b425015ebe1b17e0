/**
 * The chat page's files, imported as text so `bun build --compile` embeds them in the binary (no
 * files to ship beside it, no CDN).
 */
import html from "./web/index.html" with { type: "text" };
import js from "./web/app.js" with { type: "text" };
import css from "./web/style.css" with { type: "text" };

const file = (body: string, type: string) => () =>
  new Response(body, {
    headers: {
      "content-type": `${type}; charset=utf-8`,
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
      // The page loads nothing but its own files and talks only to this server.
      "content-security-policy": "default-src 'self'; frame-ancestors 'none'",
    },
  });

export const PAGE = {
  // bun-types declare .html imports as HTML bundles; with `type: "text"` Bun gives the file's text.
  html: file(html as unknown as string, "text/html"),
  js: file(js, "text/javascript"),
  css: file(css, "text/css"),
};
