// llama.cpp's tokenizer (node-llama-cpp's prebuilt binaries) over texts, special tokens
// parsed, none added.
//
// usage: node llamacpp_tokenize.mjs < {"module": DIR, "model": GGUF, "texts": [...]}
// prints the JSON list of id lists.
import {readFileSync} from "node:fs";
import {join} from "node:path";
import {pathToFileURL} from "node:url";

const req = JSON.parse(readFileSync(0, "utf8"));
process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";
const {getLlama} = await import(pathToFileURL(join(req.module, "dist", "index.js")).href);
const llama = await getLlama({build: "never", usePrebuiltBinaries: true, gpu: false, progressLogs: false,
    logLevel: "error", skipDownload: true});
const model = await llama.loadModel({modelPath: req.model, gpuLayers: 0, vocabOnly: true});
process.stdout.write(JSON.stringify(req.texts.map(t => Array.from(model.tokenize(t, true)))));
await model.dispose();
await llama.dispose();
