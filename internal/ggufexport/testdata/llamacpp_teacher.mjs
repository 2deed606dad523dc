// Teacher-forced pass of llama.cpp (node-llama-cpp's prebuilt binaries) over given token
// ids: for each position, llama.cpp's top-1 next token and the log-probability of the
// token that follows.
//
// usage: node llamacpp_teacher.mjs < {"module": DIR, "model": GGUF, "lora": GGUF?, "scale": S?, "ids": [...]}
// prints {"top1": [...], "logprob": [...]} (one entry per position but the last).
//
// It never builds or downloads llama.cpp: build "never", the prebuilt binaries only, CPU,
// and one thread so that results are the same on every run.
import {readFileSync} from "node:fs";
import {join} from "node:path";
import {pathToFileURL} from "node:url";

const req = JSON.parse(readFileSync(0, "utf8"));
process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";
const {getLlama} = await import(pathToFileURL(join(req.module, "dist", "index.js")).href);
const llama = await getLlama({build: "never", usePrebuiltBinaries: true, gpu: false, progressLogs: false,
    logLevel: "error", skipDownload: true});
const model = await llama.loadModel({modelPath: req.model, gpuLayers: 0});
const ctxOpts = {contextSize: Math.max(256, req.ids.length + 8), batchSize: Math.max(256, req.ids.length + 8),
    threads: 1, sequences: 1};
if (req.lora) ctxOpts.lora = {adapters: [{filePath: req.lora, scale: req.scale ?? 1}]};
const ctx = await model.createContext(ctxOpts);
const seq = ctx.getSequence();
const ids = req.ids;
const res = await seq.controlledEvaluate(ids.map((t, i) => i < ids.length - 1
    ? [t, {generateNext: {token: true, probabilities: true}}] : t));
const top1 = [], logprob = [];
for (let i = 0; i < ids.length - 1; i++) {
    const p = res[i].next.probabilities;
    top1.push(p.keys().next().value);
    logprob.push(Math.log(p.get(ids[i + 1]) ?? 0));
}
process.stdout.write(JSON.stringify({top1, logprob}));
await ctx.dispose();
await model.dispose();
await llama.dispose();
