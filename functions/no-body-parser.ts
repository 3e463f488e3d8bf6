// Stands in, in the bundle only (scripts/bundle.ts), for body-parser, which
// Express's index loads for express.json(), .raw(), .text() and .urlencoded():
// iconv-lite, qs and the rest, a large part of the cold start. The function
// reads bodies itself (read-body.ts: a size limit, then the CloudEvents codec),
// so none of those parsers is ever called; if one were, it fails here, loudly.
const absent = (name: string) => (): never => {
  throw new Error(`body-parser's ${name}() is not bundled: request bodies are read by functions/read-body.ts`);
};

export const json = absent("json");
export const raw = absent("raw");
export const text = absent("text");
export const urlencoded = absent("urlencoded");
