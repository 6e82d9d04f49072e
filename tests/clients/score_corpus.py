"""Scores faultline on a corpus of real provider error bodies
(fixtures/ground-truth/*.jsonl): each body becomes a request/response
envelope to its provider's API host (a transport failure, http_status 0,
an envelope with only the error), faultline analyzes them, and each record
is checked against the body's label: status class, cause where the label
fixes one, and the provider.

    python tests/clients/score_corpus.py FAULTLINE fixtures/ground-truth/provider-errors-heldout.jsonl

Prints the share right and each miss. The held-out file is scored, never
read while rules change (fixtures/ground-truth/SOURCES.md). Needs pyarrow.
"""
import json
import pathlib
import subprocess
import sys
import tempfile
import pyarrow.parquet as pq
HOSTS = {"openai":("api.openai.com","openai"),"azure_openai":("myres.openai.azure.com","azure_openai"),
 "anthropic":("api.anthropic.com","anthropic"),"google_gemini":("generativelanguage.googleapis.com","gemini"),
 "google_code_assist":("cloudcode-pa.googleapis.com","gemini"),"aws_bedrock":("bedrock-runtime.us-east-1.amazonaws.com","bedrock"),
 "deepseek":("api.deepseek.com","deepseek"),"groq":("api.groq.com","groq"),"mistral":("api.mistral.ai","mistral"),
 "openrouter":("openrouter.ai","openrouter"),"xai":("api.x.ai","xai"),"cohere":("api.cohere.com","cohere"),
 "together":("api.together.xyz","together"),"fireworks":("api.fireworks.ai","fireworks"),
 "vertex_ai":("us-central1-aiplatform.googleapis.com","vertex"),"vertex_ai_anthropic":("us-central1-aiplatform.googleapis.com","vertex")}
LAB = {"rate_limit":(["rate_limit"],"rl"),"quota_exhausted":(["quota"],"quota_exhausted"),"insufficient_balance":(["quota"],"insufficient_balance"),
 "auth_invalid_key":(["auth"],"invalid_api_key"),"auth_missing_key":(["auth"],"missing_api_key"),"overloaded":(["overloaded"],None),
 "context_length_exceeded":(["bad_request","payload_too_large"],"context_length_exceeded"),"max_tokens_exceeded":(["bad_request"],"max_tokens_exceeded"),
 "invalid_request":(["bad_request","unprocessable","payload_too_large"],None),"server_error":(["server_error","bad_gateway"],None),
 "service_unavailable":(["unavailable","bad_gateway"],None),"not_found_model":(["not_found"],None),"region_blocked":(["permission"],"region_blocked"),
 "permission_denied":(["permission"],None),"content_filter":(["content_filter"],None),"timeout":(["timeout"],None),"empty_response":(["empty_response"],None),
 "connection":(["connection"],None),"not_found_endpoint":(["not_found"],None)}
binary, path = sys.argv[1], sys.argv[2]
rows=[json.loads(l) for l in open(path)]
out=pathlib.Path(tempfile.mkdtemp(prefix='faultline-corpus-'))
out.mkdir(parents=True, exist_ok=True)
with open(out/'in.jsonl','w') as f:
    for i,r in enumerate(rows):
        host,_=HOSTS.get(r['provider'],("llm.internal",None))
        url=f"https://{host}/v1/chat/completions"
        ts=f"2025-03-04T12:{i//60:02d}:{i%60:02d}Z"
        if r['http_status']==0:
            env={"ts":ts,"request":{"url":url},"error":r['body']}
        else:
            env={"ts":ts,"request":{"url":url},"response":{"status":r['http_status'],"headers":r['headers'],"body":r['body']}}
        f.write(json.dumps(env)+"\n")
subprocess.run([binary,"analyze","-q","--format","json","--out",str(out/'fl'),str(out/'in.jsonl')],check=False)
recs=pq.read_table(out/'fl'/'records.parquet').to_pylist()
byline={r['source_line']:r for r in recs}
ok=0; miss=[]
for i,r in enumerate(rows,1):
    rec=byline.get(i)
    classes,cause=LAB[r['expected_class']]
    good = rec is not None and rec['status_class'] in classes and (cause is None or (cause=="rl" and rec['cause'].startswith('rate_limit')) or rec['cause']==cause)
    _,prov=HOSTS.get(r['provider'],(None,None))
    if rec is not None and prov and rec['provider']!=prov: good=False
    if good: ok+=1
    else: miss.append((i,r['provider'],r['http_status'],r['expected_class'], rec and (rec['provider'],rec['status_class'],rec['cause']), str(r['body'])[:140]))
print(f"{path}: {ok}/{len(rows)} = {100*ok/len(rows):.1f}%")
for m in miss:
    print("  ", m)
