// Stands in, in the bundle only (scripts/bundle.ts), for the client's
// generated ObjectSerializer, whose type map imports every model class of the
// Kubernetes API: 441 KiB of a client chunk the function loads on its first
// greeting, for a client that only ever sends and receives untyped objects
// (CustomObjectsApi: "any" bodies, string, number and boolean parameters).
// Same static methods, same results for those types (test/kube-bundle.test.ts
// compares them with the real one, for each type the calls we make use); a
// model type fails loudly instead of being sent unconverted.
const PRIMITIVES = new Set(["string", "boolean", "double", "integer", "long", "float", "number", "any", "object"]);

const isJsonLike = (mediaType: string): boolean => {
  const [type = "", subtype = ""] = mediaType.split("/");
  return type === "application" && subtype.split("+").includes("json");
};
const isTextLike = (mediaType: string): boolean => mediaType.split("/")[0] === "text";

function untyped(data: unknown, type: string): unknown {
  if (data === undefined || data === null || PRIMITIVES.has(type.toLowerCase())) return data;
  if (type === "Date") return data instanceof Date ? data.toISOString() : data;
  throw new Error(`the bundled Kubernetes client carries no model types: cannot convert ${type} (use CustomObjectsApi, as functions/kube-client.ts does)`);
}

export class ObjectSerializer {
  static serialize(data: unknown, type: string, _format: string): unknown {
    return untyped(data, type);
  }

  static deserialize(data: unknown, type: string, _format: string): unknown {
    if (type === "Date" && data !== undefined && data !== null) return new Date(String(data));
    return untyped(data, type);
  }

  static normalizeMediaType(mediaType: string | undefined): string | undefined {
    return mediaType === undefined ? undefined : (mediaType.split(";")[0] ?? "").trim().toLowerCase();
  }

  static getPreferredMediaType(mediaTypes: readonly string[]): string {
    if (mediaTypes.length === 0) return "application/json";
    const normal = mediaTypes.map((m) => ObjectSerializer.normalizeMediaType(m) ?? "");
    const preferred =
      normal.find((m) => m === "application/json") ??
      normal.find(isJsonLike) ??
      normal.find(isTextLike) ??
      normal.find((m) => m === "application/octet-stream");
    if (preferred === undefined) throw new Error(`None of the given media types are supported: ${mediaTypes.join(", ")}`);
    return preferred;
  }

  static stringify(data: unknown, mediaType: string): string {
    if (isTextLike(mediaType)) return String(data);
    if (isJsonLike(mediaType)) return JSON.stringify(data);
    throw new Error(`The mediaType ${mediaType} is not supported by ObjectSerializer.stringify.`);
  }

  static parse(rawData: string, mediaType: string | undefined): unknown {
    if (mediaType === undefined) throw new Error("Cannot parse content. No Content-Type defined.");
    if (isTextLike(mediaType)) return rawData;
    if (isJsonLike(mediaType)) return JSON.parse(rawData) as unknown;
    throw new Error(`The mediaType ${mediaType} is not supported by ObjectSerializer.parse.`);
  }
}
